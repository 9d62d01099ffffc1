"""``IDP_ROUTES_URL``: route rules served by a loopback HTTP server, reloaded every ``IDP_ROUTES_RELOAD_SECONDS``.

The rule server is a :class:`~fault_server.FaultServer` whose ``/rules`` path answers what the test sets
(rules, invalid JSON, invalid rules, a 503). Time is an injected clock, so "within the reload interval"
is a clock step, not a sleep.
"""

from __future__ import annotations

import logging

import pytest
from clock import FakeClock
from conftest import oidc_env
from event_factory import API, rest_token
from fault_server import FaultServer, json_body, raw, refused_url, status
from outcomes import outcome_of

from idp_authorizer import handler
from idp_authorizer.aws.compose import build_authorizer
from idp_authorizer.aws.settings import load_settings
from idp_authorizer.core.errors import ConfigurationError

RULES = "/rules"
AUTH0 = {"IDP_PROVIDER": "auth0", "IDP_AUTH0_DOMAIN": "example.eu.auth0.com", "IDP_AUDIENCE": "api"}
"""A provider built without I/O, on https, so only the rules URL decides whether loopback http is allowed."""
READ = {"GET /pets": ["read"]}
ADMIN = {"GET /pets": ["admin"]}


@pytest.fixture
def rule_server():
    with FaultServer() as server:
        server.set(RULES, json_body(READ))
        yield server


def env(dev_idp, url: str, **extra: str) -> dict[str, str]:
    return oidc_env(dev_idp, IDP_ROUTES_URL=url, IDP_ROUTES_RELOAD_SECONDS="60", **extra)


def decide(authorizer, token: str, path: str = "/pets") -> str:
    return outcome_of(lambda: authorizer.handle(rest_token(token, f"{API}/GET{path}")))


def test_decisions_follow_the_rules_within_the_reload_interval(dev_idp, rule_server, build):
    clock = FakeClock()
    authorizer = build(env(dev_idp, rule_server.issuer + RULES), clock)
    reader = dev_idp.mint(scope="read")
    assert rule_server.hits[RULES] == 0  # nothing fetched at build time
    assert decide(authorizer, reader) == "allow"
    assert rule_server.hits[RULES] == 1
    rule_server.set(RULES, json_body(ADMIN))
    clock.advance(30)
    assert decide(authorizer, reader) == "allow"  # within the interval: the rules it has
    assert rule_server.hits[RULES] == 1
    clock.advance(31)
    # The reload changed the rules: the response rendered for this token under the old ones is not reused.
    assert decide(authorizer, reader) == "deny"
    assert decide(authorizer, dev_idp.mint(scope="admin")) == "allow"
    assert rule_server.hits[RULES] == 2


def test_unchanged_rules_keep_the_cached_responses(dev_idp, rule_server, build):
    clock = FakeClock()
    authorizer = build(env(dev_idp, rule_server.issuer + RULES), clock)
    reader = dev_idp.mint(scope="read")
    decide(authorizer, reader)
    generation = authorizer.path.generation
    clock.advance(61)
    assert decide(authorizer, reader) == "allow"
    assert rule_server.hits[RULES] == 2
    assert authorizer.path.generation == generation


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        (status(503), "http_503"),
        (raw(b"{not json"), "invalid_json"),
        (json_body({"GET /pets/{id}": ["read"], "GET /pets/{name}": ["read"]}), "invalid_routes"),
        (json_body({"FETCH pets": ["read"]}), "invalid_routes"),
    ],
)
def test_a_failed_or_invalid_reload_keeps_the_last_good_rules(dev_idp, rule_server, build, caplog, fault, code):
    clock = FakeClock()
    authorizer = build(env(dev_idp, rule_server.issuer + RULES), clock)
    reader = dev_idp.mint(scope="read")
    assert decide(authorizer, reader) == "allow"
    rule_server.set(RULES, fault)
    clock.advance(61)
    with caplog.at_level(logging.WARNING, logger="idp_authorizer"):
        assert decide(authorizer, reader) == "allow"
        assert decide(authorizer, dev_idp.mint(scope="other")) == "deny"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "route rules" in r.getMessage()]
    assert len(warnings) == 1 and code in warnings[0].getMessage()
    assert rule_server.hits[RULES] == 2  # one failed reload, not one per request


def test_the_rule_server_going_down_keeps_the_last_good_rules(dev_idp, build):
    clock = FakeClock()
    server = FaultServer().start()
    server.set(RULES, json_body(READ))
    authorizer = build(env(dev_idp, server.issuer + RULES), clock)
    reader = dev_idp.mint(scope="read")
    assert decide(authorizer, reader) == "allow"
    server.stop()
    clock.advance(61)
    assert decide(authorizer, reader) == "allow"
    assert decide(authorizer, dev_idp.mint(scope="read", sub="someone-else")) == "allow"


def test_cold_start_with_the_rule_server_down_fails_closed_until_a_good_load(dev_idp, rule_server, build):
    clock = FakeClock()
    rule_server.set(RULES, status(503))
    authorizer = build(env(dev_idp, rule_server.issuer + RULES), clock)
    reader = dev_idp.mint(scope="read")
    assert [decide(authorizer, reader) for _ in range(3)] == ["unavailable"] * 3
    assert decide(authorizer, "not-even-a-token") == "unavailable"
    assert rule_server.hits[RULES] == 1  # retried after a pause, not on every request
    rule_server.set(RULES, json_body(READ))
    clock.advance(5)
    assert decide(authorizer, reader) == "allow"


def test_cold_start_with_nothing_listening_fails_closed(dev_idp, build):
    authorizer = build(env(dev_idp, refused_url(RULES)), FakeClock())
    assert decide(authorizer, dev_idp.mint(scope="read")) == "unavailable"


def test_through_the_real_handler(dev_idp, rule_server, configure):
    configure(env(dev_idp, rule_server.issuer + RULES))
    assert outcome_of(lambda: handler.handler(rest_token(dev_idp.mint(scope="read")), None)) == "allow"
    assert outcome_of(lambda: handler.handler(rest_token(dev_idp.mint(scope="write")), None)) == "deny"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"IDP_ROUTES_URL": "http://rules.example.com/rules"}, "IDP_ROUTES_URL must be an https:// URL"),
        ({"IDP_ROUTES_URL": "https://rules.example/r", "IDP_ROUTES": '{"GET /x": []}'}, "not both"),
    ],
)
def test_bad_sources_are_configuration_errors(monkeypatch, extra, message):
    for name, value in {**AUTH0, **extra}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=message):
        build_authorizer(load_settings())


def test_the_appconfig_extension_endpoint_is_allowed_over_http(build):
    url = "http://localhost:2772/applications/api/environments/prod/configurations/routes"
    authorizer = build({**AUTH0, "IDP_ROUTES_URL": url})  # no I/O yet: the first request loads
    assert authorizer.routes is not None and authorizer.routes.url == url


def doctor_report(monkeypatch, capsys, environment: dict[str, str]) -> tuple[int, str]:
    from idp_authorizer.tools import cli

    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    code = cli.main(["doctor"])
    return code, capsys.readouterr().out


def test_doctor_fetches_and_validates_the_rules(dev_idp, rule_server, monkeypatch, capsys):
    code, out = doctor_report(monkeypatch, capsys, env(dev_idp, rule_server.issuer + RULES))
    assert f"ok       route rules {rule_server.issuer}{RULES}: 1 rule(s), valid" in out
    assert rule_server.hits[RULES] == 1
    rule_server.set(RULES, json_body({"GET /pets/{id}": ["read"], "GET /pets/{name}": ["read"]}))
    code, out = doctor_report(monkeypatch, capsys, env(dev_idp, rule_server.issuer + RULES))
    assert code == 1
    assert f"PROBLEM  route rules {rule_server.issuer}{RULES}: not loaded: invalid_routes (" in out
