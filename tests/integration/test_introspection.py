"""RFC 7662 introspection through the real handler, against tests/support/introspection_server.py on 127.0.0.1.

Client authentication exactly as RFC 6749 section 2.3.1 says, the checks on an active answer, the
mapping into the same Principal the JWT providers produce, caching (positive, negative, never past
``exp``, never an outage), single-flight, and the HTTP behaviour toward the endpoint.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from event_factory import ARN, http_v2, rest_token
from fault_server import blackhole_url, drop, hang, json_body, oversized, raw, refused_url, status
from introspection_server import BASIC, POST, Client, IntrospectionServer
from outcomes import outcome_of

from idp_authorizer import handler
from idp_authorizer.core.errors import AuthorizerUnavailable
from idp_authorizer.infra.client_auth import ClientCredentials

API = ARN.rsplit("/", 2)[0]


@pytest.fixture
def server() -> Iterator[IntrospectionServer]:
    with IntrospectionServer() as srv:
        yield srv


def introspection_env(srv: IntrospectionServer, client: Client = BASIC, **extra: str) -> dict[str, str]:
    env = {
        "IDP_PROVIDER": "introspection",
        "IDP_INTROSPECTION_URL": srv.url,
        "IDP_CLIENT_ID": client.client_id,
        "IDP_CLIENT_SECRET": client.client_secret,
        "IDP_CLIENT_AUTH": client.method,
        "IDP_ALLOW_LOOPBACK_HTTP": "true",
    }
    env.update(extra)
    return env


def v2_event(token: str, route: str = "GET /pets") -> dict[str, Any]:
    method, path = route.split(" ")
    return http_v2(token, f"{API}/{method}{path}", route)


def outcome(token: str) -> str:
    return outcome_of(lambda: handler.handler(rest_token(token), None))


def allow_all(principal_id: str, context: dict[str, Any]) -> dict[str, Any]:
    return {
        "principalId": principal_id,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": [f"{API}/*"]}],
        },
        "context": context,
    }


# -- client authentication -----------------------------------------------------------------------


def test_basic_credentials_are_form_encoded_before_base64():
    credentials = ClientCredentials("rs:api gateway", "s3cr%t:with+special/chars= &?")
    form: dict[str, str] = {}
    headers = credentials.apply(form)
    assert form == {}
    expected = base64.b64encode(b"rs%3Aapi+gateway:s3cr%25t%3Awith%2Bspecial%2Fchars%3D+%26%3F").decode()
    assert headers == {"Authorization": f"Basic {expected}"}
    assert "s3cr" not in repr(credentials)


def test_client_secret_basic_with_special_characters(server, configure):
    configure(introspection_env(server, BASIC))
    token = server.issue(scope="read write")
    context = {"sub": "client-app", "iss": server.issuer, "scope": "read write", "provider": "introspection"}
    assert handler.handler(rest_token(token), None) == allow_all("client-app", {**context, "client_id": "client-app"})
    assert server.auth_failures == [] and server.hints == ["access_token"] and server.calls == 1


def test_client_secret_post(server, configure):
    configure(introspection_env(server, POST))
    assert outcome(server.issue()) == "allow"
    assert server.auth_failures == [] and server.calls == 1


@pytest.mark.parametrize(
    "client",
    [
        Client(BASIC.client_id, "wrong", "client_secret_basic"),
        Client(POST.client_id, POST.client_secret, "client_secret_basic"),
    ],
    ids=["wrong-secret", "wrong-method"],
)
def test_refused_client_authentication_fails_closed_and_is_not_cached(server, configure, client):
    configure(introspection_env(server, client))
    token = server.issue()
    assert outcome(token) == outcome(token) == "unavailable"  # 401 from the endpoint: an outage, a 500
    assert server.calls == 2 and len(server.auth_failures) == 2


# -- the answer ------------------------------------------------------------------------------


def test_oidc_provider_shaped_answer_without_sub_maps_client_id(server, configure):
    """panva oidc-provider answers {active, client_id, exp, iat, iss, aud, scope, token_type} for opaque tokens."""
    configure(introspection_env(server, IDP_RESPONSE="simple", IDP_CONTEXT_CLAIMS="aud,exp"))
    token = server.issue(scope="read")
    exp = server.tokens[token]["exp"]
    assert handler.handler(v2_event(token), None) == {
        "isAuthorized": True,
        "context": {
            "sub": "client-app",
            "iss": server.issuer,
            "scope": "read",
            "provider": "introspection",
            "client_id": "client-app",
            "aud": "urn:api",
            "exp": exp,
        },
    }


@pytest.mark.parametrize(
    ("fields", "subject"),
    [({"sub": "user-1", "username": "alice"}, "user-1"), ({"username": "alice"}, "alice"), ({}, "client-app")],
)
def test_subject_is_sub_then_username_then_client_id(server, configure, fields, subject):
    configure(introspection_env(server))
    response = handler.handler(rest_token(server.issue(**fields)), None)
    assert response["principalId"] == subject and response["context"]["client_id"] == "client-app"


REFUSED = {
    "unknown token": lambda s: "never-issued-0123456789",
    "expired exp": lambda s: s.issue(exp=int(time.time()) - 5),
    "nbf in the future": lambda s: s.issue(nbf=int(time.time()) + 60),
    "wrong iss": lambda s: s.issue(iss="https://other.example"),
    "wrong aud": lambda s: s.issue(aud="urn:other"),
    "aud missing": lambda s: s.issue(aud=None),
    "refresh token": lambda s: s.issue(token_type="refresh_token"),
    "DPoP-bound token": lambda s: s.issue(token_type="DPoP"),
    "no subject at all": lambda s: s.issue(client_id=None),
    "exp not a number": lambda s: s.issue(exp="soon"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_refused_answers_are_invalid_tokens(server, configure, case):
    configure(introspection_env(server, IDP_ISSUER=server.issuer, IDP_AUDIENCE="urn:api,urn:api2"))
    token = REFUSED[case](server)
    assert outcome(token) == "unauthorized"
    assert outcome_of(lambda: handler.handler(v2_event(token), None)) == "false"


@pytest.mark.parametrize(
    "token_type", ["Bearer", "bearer", "access_token", "urn:ietf:params:oauth:token-type:access_token"]
)
def test_access_token_types_accepted_case_insensitively(server, configure, token_type):
    configure(introspection_env(server))
    assert outcome(server.issue(token_type=token_type)) == "allow"


def test_leeway_applies_to_exp_and_nbf(server, configure):
    configure(introspection_env(server, IDP_LEEWAY_SECONDS="30"))
    now = int(time.time())
    assert outcome(server.issue(nbf=now + 10)) == "allow"
    token = server.issue()
    server.tokens[token]["exp"] = now - 10  # the server still says active; our leeway accepts it
    server.answer = lambda t, _orig=server.answer: {"active": True, **server.tokens[t]}  # type: ignore[method-assign]
    assert outcome(token) == "allow"


@pytest.mark.parametrize(
    "fault",
    [
        json_body({"active": "true", "sub": "x"}),
        json_body({"sub": "x"}),
        json_body([{"active": True}]),
        raw(b"active=true", "text/plain"),
        status(503),
        status(429),
        status(500),
    ],
    ids=["active-string", "no-active", "array", "not-json", "503", "429", "500"],
)
def test_broken_answers_fail_closed_and_are_never_cached(server, configure, fault):
    configure(introspection_env(server))
    server.fault = fault
    token = server.issue()
    assert outcome(token) == outcome(token) == "unavailable"
    assert server.calls == 2
    server.fault = None
    assert outcome(token) == "allow"  # recovered at once: no outage was remembered


def test_a_400_refuses_the_token(server, configure):
    """RFC 7662 section 2.3: bad client credentials get 401; a 400 (unsupported_token_type) is about the token."""
    configure(introspection_env(server))
    server.fault = status(400, b'{"error":"unsupported_token_type"}')
    assert outcome(server.issue()) == "unauthorized"


# -- caching -------------------------------------------------------------------------------------


def test_repeated_token_asks_once_and_revocation_shows_after_the_window(server, configure):
    window = 1.0
    configure(introspection_env(server, IDP_INTROSPECTION_CACHE_SECONDS=str(window)))
    token = server.issue()
    assert outcome(token) == "allow"
    cached_at = time.monotonic()
    server.revoke(token)
    for _ in range(20):
        assert outcome(token) == "allow"  # the documented revocation window
    assert time.monotonic() - cached_at < window, "machine too slow for the window"
    assert server.calls == 1
    time.sleep(max(0.0, cached_at + window - time.monotonic()) + 0.1)
    assert outcome(token) == "unauthorized"
    assert server.calls == 2


def test_positive_cache_never_outlives_exp(server, configure):
    configure(introspection_env(server, IDP_INTROSPECTION_CACHE_SECONDS="300"))
    token = server.issue(ttl=1)
    assert outcome(token) == "allow"
    time.sleep(1.1)
    assert outcome(token) == "unauthorized"


def test_answer_without_exp_is_cached_for_the_configured_maximum_only(server, configure):
    configure(introspection_env(server, IDP_INTROSPECTION_CACHE_SECONDS="1"))
    token = server.issue(ttl=None)
    assert outcome(token) == outcome(token) == "allow"
    assert server.calls == 1
    time.sleep(1.1)
    assert outcome(token) == "allow"
    assert server.calls == 2


def test_zero_cache_seconds_asks_every_time(server, configure):
    configure(introspection_env(server, IDP_INTROSPECTION_CACHE_SECONDS="0"))
    token = server.issue()
    assert outcome(token) == outcome(token) == "allow"
    assert server.calls == 2


def test_inactive_answers_are_remembered_briefly(server, configure):
    configure(introspection_env(server, IDP_NEGATIVE_CACHE_SECONDS="1"))
    for _ in range(10):
        assert outcome("made-up-token-0123456789") == "unauthorized"
    assert server.calls == 1
    time.sleep(1.1)
    assert outcome("made-up-token-0123456789") == "unauthorized"
    assert server.calls == 2


async def test_concurrent_requests_for_one_token_share_one_call(server, configure):
    configure(introspection_env(server))
    server.delay = 0.3  # every request is in flight at once
    token = server.issue()
    responses = await asyncio.gather(*(handler.authorize(rest_token(token)) for _ in range(50)))
    assert {r["principalId"] for r in responses} == {"client-app"}
    assert server.calls == 1


async def test_concurrent_requests_one_call_per_distinct_token(server, configure):
    configure(introspection_env(server))
    server.delay = 0.2
    tokens = [server.issue(sub=f"user-{i}") for i in range(5)]
    events = [rest_token(tokens[i % 5]) for i in range(40)]
    responses = await asyncio.gather(*(handler.authorize(event) for event in events))
    assert [r["principalId"] for r in responses] == [f"user-{i % 5}" for i in range(40)]
    assert server.calls == 5 and set(server.calls_by_token.values()) == {1}


async def test_concurrent_refusals_share_one_call_and_outages_are_shared_not_kept(server, configure):
    configure(introspection_env(server))
    server.delay = 0.2
    results = await asyncio.gather(
        *(handler.authorize(rest_token("unknown-token-xyz")) for _ in range(20)), return_exceptions=True
    )
    assert all(type(r) is Exception and str(r) == "Unauthorized" for r in results)
    assert server.calls == 1
    server.fault = status(503)
    token = server.issue()
    results = await asyncio.gather(*(handler.authorize(rest_token(token)) for _ in range(20)), return_exceptions=True)
    assert all(isinstance(r, AuthorizerUnavailable) for r in results)
    assert server.calls == 2
    server.fault = None
    assert (await handler.authorize(rest_token(token)))["principalId"] == "client-app"


# -- discovery -----------------------------------------------------------------------------------


def test_endpoint_found_by_discovery(server, configure):
    env = introspection_env(server, IDP_ISSUER=server.issuer)
    del env["IDP_INTROSPECTION_URL"]
    configure(env)
    assert outcome(server.issue()) == outcome(server.issue()) == "allow"
    assert server.discovery_hits == 1 and server.calls == 2


def test_discovery_with_another_issuer_fails_closed(configure):
    with IntrospectionServer(issuer_suffix="/tenant") as srv:
        env = introspection_env(srv, IDP_ISSUER=f"http://127.0.0.1:{srv.port}")
        del env["IDP_INTROSPECTION_URL"]
        configure(env)
        assert outcome(srv.issue()) == "unavailable"
        assert srv.calls == 0


# -- HTTP behaviour toward the endpoint ----------------------------------------------------------


def test_slow_endpoint_times_out_and_the_post_is_not_retried(server, configure):
    configure(introspection_env(server, IDP_HTTP_TIMEOUT_SECONDS="0.5"))
    server.fault = hang(5)
    started = time.monotonic()
    assert outcome(server.issue()) == "unavailable"
    assert time.monotonic() - started < 1.5
    assert server.calls == 1


def test_connection_dropped_after_the_request_is_not_retried(server, configure):
    configure(introspection_env(server))
    server.fault = drop()
    assert outcome(server.issue()) == "unavailable"
    assert server.calls == 1  # the request may have been processed: a POST is never sent twice


def test_oversized_answer_is_refused(server, configure):
    configure(introspection_env(server, IDP_HTTP_MAX_RESPONSE_BYTES="4096"))
    server.fault = oversized(64 * 1024, chunked=True)
    assert outcome(server.issue()) == "unavailable"


def test_refused_connection_fails_closed(server, configure):
    configure(introspection_env(server, IDP_INTROSPECTION_URL=refused_url("/introspect")))
    assert outcome("some-opaque-token-0123") == "unavailable"


def test_connect_timeout_is_explicit(server, configure):
    with blackhole_url("/introspect") as url:
        configure(introspection_env(server, IDP_INTROSPECTION_URL=url, IDP_HTTP_CONNECT_TIMEOUT_SECONDS="0.3"))
        started = time.monotonic()
        assert outcome("some-opaque-token-0123") == "unavailable"
        assert time.monotonic() - started < 2.0


# -- rules, logs, configuration ------------------------------------------------------------------


def test_introspected_scopes_drive_the_route_rules(server, configure):
    configure(introspection_env(server, IDP_ROUTES=json.dumps({"GET /pets": ["pets:read"]})))
    denied = handler.handler(rest_token(server.issue(scope="other")), None)
    assert denied["policyDocument"]["Statement"] == [
        {"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": [f"{API}/GET/pets"]}
    ]
    allowed = handler.handler(rest_token(server.issue(scope="pets:read")), None)
    assert allowed["policyDocument"]["Statement"][0]["Effect"] == "Allow"


def test_neither_token_nor_secret_is_logged(server, configure, capsys):
    configure(introspection_env(server))
    token = server.issue()
    handler.handler(rest_token(token), None)
    server.fault = status(503)
    outcome(server.issue())
    output = capsys.readouterr().out
    assert token not in output and BASIC.client_secret not in output and "introspection" in output


def test_plain_http_endpoint_refused_unless_loopback(server, monkeypatch):
    for name, value in introspection_env(server, IDP_INTROSPECTION_URL="http://idp.example/introspect").items():
        monkeypatch.setenv(name, value)
    assert handler.init() is None


def test_missing_client_credentials_is_a_configuration_error(server, monkeypatch, capsys):
    env = introspection_env(server)
    del env["IDP_CLIENT_SECRET"]
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert handler.init() is None
    assert "client_secret" in capsys.readouterr().out
