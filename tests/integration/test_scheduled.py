"""Scheduled refresh through the real handler: an EventBridge / Scheduler event refreshes keys and rules.

The IdP is a dev IdP of the test's own (it counts its hits); the rule server a FaultServer path.
"""

from __future__ import annotations

import logging

import pytest
from conftest import oidc_env
from event_factory import rest_token
from fault_server import FaultServer, json_body
from outcomes import outcome_of

from idp_authorizer import handler

DISCOVERY = "/.well-known/openid-configuration"
JWKS = "/.well-known/jwks.json"


def scheduled(source: str = "aws.events") -> dict[str, object]:
    """The event an EventBridge rule (``aws.events``) or EventBridge Scheduler (``aws.scheduler``) sends."""
    return {
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": source,
        "account": "123456789012",
        "time": "2026-12-01T23:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/idp-authorizer-refresh"],
        "detail": {},
    }


@pytest.mark.parametrize("source", ["aws.events", "aws.scheduler"])
def test_a_scheduled_event_fetches_the_keys_and_requests_then_need_no_fetch(fresh_idp, configure, caplog, source):
    configure(oidc_env(fresh_idp))
    with caplog.at_level(logging.INFO, logger="idp_authorizer.scheduled"):
        status = handler.handler(scheduled(source), None)
    assert status == {"status": "ok", "refreshed": 2, "failed": []}
    assert (fresh_idp.hits[DISCOVERY], fresh_idp.hits[JWKS]) == (1, 1)
    assert [r.getMessage() for r in caplog.records if r.name == "idp_authorizer.scheduled"] == [
        f"scheduled refresh: {status}"
    ]
    assert outcome_of(lambda: handler.handler(rest_token(fresh_idp.mint()), None)) == "allow"
    assert (fresh_idp.hits[DISCOVERY], fresh_idp.hits[JWKS]) == (1, 1)


def test_only_documents_near_their_max_age_are_fetched(fresh_idp, configure):
    configure(oidc_env(fresh_idp))  # max age 3600 s: a document fetched now is not near it
    handler.handler(scheduled(), None)
    assert handler.handler(scheduled(), None) == {"status": "ok", "refreshed": 0, "failed": []}
    assert fresh_idp.hits[JWKS] == 1
    configure(oidc_env(fresh_idp, IDP_JWKS_MAX_AGE_SECONDS="300"))  # within the margin: every run fetches
    handler.handler(scheduled(), None)
    assert handler.handler(scheduled(), None)["refreshed"] == 2
    assert fresh_idp.hits[JWKS] == 3


def test_an_idp_outage_is_reported_not_raised(configure):
    with FaultServer() as idp:
        issuer = idp.issuer
    configure(
        {
            "IDP_PROVIDER": "oidc",
            "IDP_ISSUER": issuer,
            "IDP_AUDIENCE": "demo-api",
            "IDP_ALLOW_LOOPBACK_HTTP": "true",
        }
    )
    status = handler.handler(scheduled(), None)
    assert status["status"] == "degraded" and status["refreshed"] == 0
    assert status["failed"] and all(code.startswith("idp_") for code in status["failed"])


def test_a_bad_configuration_is_reported_not_raised(monkeypatch):
    monkeypatch.setenv("IDP_PROVIDER", "oidc")
    try:
        assert handler.init() is None
        assert handler.handler(scheduled(), None) == {"status": "configuration_error"}
    finally:
        monkeypatch.delenv("IDP_PROVIDER")
        handler.init()


@pytest.mark.parametrize(
    "event",
    [
        {**scheduled(), "detail-type": "EC2 Instance State-change Notification"},
        {**scheduled(), "source": "my.app"},
        {"detail-type": "Scheduled Event"},
    ],
)
def test_other_events_still_fail_closed(dev_idp, configure, event):
    configure(oidc_env(dev_idp))
    assert outcome_of(lambda: handler.handler(event, None)) == "unauthorized"


def test_a_scheduled_event_reloads_the_route_rules(dev_idp, configure):
    with FaultServer() as rules:
        rules.set("/rules", json_body({"GET /pets": ["read"]}))
        configure(oidc_env(dev_idp, IDP_ROUTES_URL=rules.issuer + "/rules", IDP_ROUTES_RELOAD_SECONDS="3600"))
        reader = dev_idp.mint(scope="read")
        assert outcome_of(lambda: handler.handler(rest_token(reader), None)) == "allow"
        rules.set("/rules", json_body({"GET /pets": ["admin"]}))
        assert handler.handler(scheduled(), None)["routes"] == "loaded"
        assert outcome_of(lambda: handler.handler(rest_token(reader), None)) == "deny"
        assert rules.hits["/rules"] == 2
