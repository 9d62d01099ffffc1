"""The real handler against the dev IdP on 127.0.0.1: shapes × response modes, the outcome table, caching."""

import hashlib
import json
import time

import pytest
from conftest import oidc_env
from event_factory import API, WS, http_v1, http_v2, rest_request, rest_token, websocket

from idp_authorizer import handler
from idp_authorizer.core.errors import AuthorizerUnavailable


def events(token: str | None) -> dict[str, dict]:
    extra = {"path": "/pets", "requestContext": {"requestId": "r-1"}}
    return {
        "rest-token": rest_token(token),
        "rest-request": rest_request(token, **extra),
        "http-v1": http_v1(token, **extra),
        "http-v2": http_v2(token),
        "websocket": websocket(token),
    }


def expected_allow(shape: str, mode: str, issuer: str) -> dict:
    context = {"sub": "user-123", "iss": issuer, "scope": "read", "provider": "oidc", "client_id": "demo-client"}
    if shape == "http-v2" and mode in ("auto", "simple"):
        return {"isAuthorized": True, "context": context}
    prefix = WS if shape == "websocket" else API
    return {
        "principalId": "user-123",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": [f"{prefix}/*"]}],
        },
        "context": context,
    }


SHAPES = ["rest-token", "rest-request", "http-v1", "http-v2", "websocket"]
MODES = ["auto", "iam", "simple"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", SHAPES)
def test_every_shape_and_mode_whole_response(dev_idp, configure, shape, mode):
    configure(oidc_env(dev_idp, IDP_RESPONSE=mode))
    response = handler.handler(events(dev_idp.mint(scope="read"))[shape], None)
    assert response == expected_allow(shape, mode, dev_idp.issuer)


def refused(call) -> str:
    """What API Gateway sees: '401' for the deliberate Unauthorized, 'deny' for isAuthorized false."""
    try:
        response = call()
    except Exception as exc:
        assert type(exc) is Exception and str(exc) == "Unauthorized", repr(exc)
        return "401"
    assert response == {"isAuthorized": False}
    return "deny"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", SHAPES)
def test_invalid_tokens_follow_the_outcome_table(dev_idp, configure, shape, mode):
    configure(oidc_env(dev_idp, IDP_RESPONSE=mode))
    simple = shape == "http-v2" and mode != "iam"
    bad = {
        "no token": None,
        "expired": dev_idp.mint(ttl=-5),
        "wrong audience": dev_idp.mint(aud="other-api"),
        "wrong issuer": dev_idp.mint(iss="https://evil.example/"),
        "missing exp": dev_idp.mint(exp=None),
        "bad signature": dev_idp.mint()[:-6] + "AAAAAA",
        "garbage": "not-a-jwt",
    }
    for case, token in bad.items():
        outcome = refused(lambda t=token: handler.handler(events(t)[shape], None))
        assert outcome == ("deny" if simple else "401"), case


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", ["rest-token", "rest-request", "http-v1", "http-v2"])
def test_missing_scope_is_an_explicit_deny(dev_idp, configure, shape, mode):
    configure(oidc_env(dev_idp, IDP_RESPONSE=mode, IDP_ROUTES=json.dumps({"GET /pets": ["pets:read"]})))
    response = handler.handler(events(dev_idp.mint(scope="other"))[shape], None)
    if shape == "http-v2" and mode != "iam":
        assert response == {"isAuthorized": False}
    else:
        assert response["policyDocument"]["Statement"] == [
            {"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": [f"{API}/GET/pets"]}
        ]


@pytest.mark.parametrize("mode", MODES)
def test_idp_unreachable_fails_closed_with_a_500(dev_idp, configure, mode, unused_tcp_port):
    configure({**oidc_env(dev_idp, IDP_RESPONSE=mode), "IDP_ISSUER": f"http://127.0.0.1:{unused_tcp_port}"})
    for shape in SHAPES:
        with pytest.raises(AuthorizerUnavailable):
            handler.handler(events(dev_idp.mint())[shape], None)


def test_second_warm_invocation_makes_no_http_request(fresh_idp, configure):
    authorizer = configure(oidc_env(fresh_idp))
    first_token, second_token = fresh_idp.mint(), fresh_idp.mint(sub="other")
    handler.handler(events(first_token)["rest-token"], None)
    hits = dict(fresh_idp.hits)
    requests = authorizer.router.providers[0].store._http.requests
    handler.handler(events(first_token)["rest-token"], None)  # verdict cache
    handler.handler(events(second_token)["http-v2"], None)  # new token, cached keys
    assert dict(fresh_idp.hits) == hits
    assert authorizer.router.providers[0].store._http.requests == requests == 2


def test_unknown_kid_flood_refetches_at_most_once_per_cooldown(fresh_idp, configure):
    from joserfc.jwk import RSAKey

    authorizer = configure(oidc_env(fresh_idp, IDP_JWKS_COOLDOWN_SECONDS="30"))
    handler.handler(events(fresh_idp.mint())["rest-token"], None)
    store = authorizer.router.providers[0].store
    assert store.fetches == 1
    stranger = RSAKey.generate_key(2048, private=True)
    for i in range(200):
        forged = fresh_idp.mint(key=stranger, header={"kid": f"made-up-{i}"})
        assert refused(lambda t=forged: handler.handler(events(t)["rest-token"], None)) == "401"
    assert store.fetches == 2
    assert fresh_idp.hits["/.well-known/jwks.json"] == 2


def test_new_key_after_rotation_accepted_after_one_refetch(fresh_idp, configure):
    authorizer = configure(oidc_env(fresh_idp, IDP_JWKS_COOLDOWN_SECONDS="0"))
    handler.handler(events(fresh_idp.mint())["rest-token"], None)
    fresh_idp.rotate_keys()
    assert handler.handler(events(fresh_idp.mint())["rest-token"], None)["principalId"] == "user-123"
    assert authorizer.router.providers[0].store.fetches == 2


def test_cached_verdict_not_served_after_expiry_while_the_loop_sat_idle(dev_idp, configure):
    configure(oidc_env(dev_idp, IDP_TOKEN_CACHE_SECONDS="300"))
    event = events(dev_idp.mint(ttl=2))["rest-token"]
    assert handler.handler(event, None)["principalId"] == "user-123"
    time.sleep(2.2)  # no event loop runs here, as in a frozen Lambda container
    assert refused(lambda: handler.handler(event, None)) == "401"


def test_discovery_with_mismatched_issuer_is_refused(dev_idp, configure):
    # The configured issuer differs from the document's by a trailing slash: exact match is required.
    configure(oidc_env(dev_idp, IDP_ISSUER=dev_idp.issuer + "/"))
    with pytest.raises(AuthorizerUnavailable):
        handler.handler(events(dev_idp.mint(iss=dev_idp.issuer + "/"))["rest-token"], None)


def test_bad_configuration_fails_closed_and_names_the_variable(monkeypatch, capsys):
    monkeypatch.setenv("IDP_PROVIDER", "oidc")
    monkeypatch.setenv("IDP_ISSUER", "https://issuer.example/")
    monkeypatch.setenv("IDP_AUDIENCE", "api")
    monkeypatch.setenv("IDP_ALGORITHMS", "HS256")
    assert handler.init() is None
    assert "IDP_ALGORITHMS" in capsys.readouterr().out
    with pytest.raises(AuthorizerUnavailable):
        handler.handler(events("abc")["rest-token"], None)


def test_plain_http_issuer_refused_unless_loopback_allowed(dev_idp, monkeypatch):
    for name, value in oidc_env(dev_idp).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("IDP_ALLOW_LOOPBACK_HTTP")
    assert handler.init() is None
    monkeypatch.setenv("IDP_ALLOW_LOOPBACK_HTTP", "true")
    monkeypatch.setenv("IDP_ISSUER", "http://issuer.example")
    assert handler.init() is None


def test_decision_log_line_is_json_without_the_token(dev_idp, configure, capsys):
    configure(oidc_env(dev_idp))
    token = dev_idp.mint()
    event = events(token)["rest-request"]
    handler.handler(event, None)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    decision = [line for line in lines if line.get("logger") == "idp_authorizer.decision"][-1]
    assert decision["outcome"] == "allow" and decision["request_id"] == "r-1" and decision["kid"]
    assert len(decision["token_fp"]) == 12
    assert token not in json.dumps(lines) and token[-20:] not in json.dumps(lines)


async def test_async_entry_gives_the_same_response(dev_idp, configure):
    configure(oidc_env(dev_idp))
    event = events(dev_idp.mint())["http-v2"]
    assert await handler.authorize(event) == handler.handler(event, None)


@pytest.mark.parametrize(
    ("decisions", "logged"), [("all", ["allow", "invalid"]), ("refusals", ["invalid"]), ("none", [])]
)
def test_log_decisions_setting_chooses_which_lines_are_written(dev_idp, configure, capsys, decisions, logged):
    configure(oidc_env(dev_idp, IDP_LOG_DECISIONS=decisions))
    capsys.readouterr()
    handler.handler(events(dev_idp.mint())["rest-token"], None)
    assert refused(lambda: handler.handler(events(dev_idp.mint(ttl=-5))["rest-token"], None)) == "401"
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["outcome"] for line in lines if line.get("logger") == "idp_authorizer.decision"] == logged


def test_cached_verdict_keeps_only_the_claims_responses_read(dev_idp, configure):
    routes = {"GET /pets": ["read"], "GET /admin": {"claims": {"role": ["admin"]}}}
    authorizer = configure(
        oidc_env(dev_idp, IDP_ROUTES=json.dumps(routes), IDP_CONTEXT_CLAIMS="tenant", IDP_RESPONSE="iam")
    )
    token = dev_idp.mint(role="admin", tenant="acme", email="a@example.com")
    first = handler.handler(events(token)["rest-token"], None)
    fingerprint = hashlib.sha256(token.encode()).hexdigest()
    cached = authorizer.cache.get_fresh(fingerprint)
    assert dict(cached.principal.claims) == {"role": "admin", "tenant": "acme"}
    # A cache hit on another route still judges the claim rule and fills the context.
    admin = events(token)["rest-token"] | {"methodArn": f"{API}/GET/admin"}
    second = handler.handler(admin, None)
    assert second["context"]["tenant"] == "acme" == first["context"]["tenant"]
    statements = second["policyDocument"]["Statement"]
    assert len(statements) == 1 and statements[0]["Effect"] == "Allow"
    assert sorted(statements[0]["Resource"]) == [f"{API}/GET/admin", f"{API}/GET/pets"]
