"""IdP faults are outages, never cached verdicts; each instance bounds shared verdicts by its own settings.

Issue 11, items 3 and 5, against real servers on 127.0.0.1 through the Lambda entry point
(:func:`idp_authorizer.handler.handler`):

- A token whose ``kid`` could not be checked because the key set was unavailable is a 500 (not a
  negatively cached ``unknown_kid``), and is accepted after the IdP recovers, with one refetch.
- An introspection 400 whose OAuth ``error`` (RFC 6749 section 5.2) blames the client or the request
  is a configuration fault: a 500, asked again next time; a 400 about the token stays a 401.
- A verdict read from the shared tier (real ``redis-server``) is reused only within the reader's own
  ``IDP_INTROSPECTION_CACHE_SECONDS`` / ``IDP_NEGATIVE_CACHE_SECONDS``, counted from the IdP's answer.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from clock import FakeClock
from event_factory import rest_token
from fault_server import JWKS, FaultServer, status
from introspection_server import BASIC, IntrospectionServer
from outcomes import outcome_of
from servers import CacheServer

from idp_authorizer import handler
from idp_authorizer.aws.compose import build_authorizer
from idp_authorizer.aws.runtime import Authorizer
from idp_authorizer.aws.settings import load_settings

# aiocache's Redis backend still calls redis-py's deprecated close() when it closes.
pytestmark = pytest.mark.filterwarnings("ignore:Call to deprecated close:DeprecationWarning")


RETRY_AFTER = 5.0  # KeySetPolicy.retry_after: how long a failed key-set fetch makes callers fail fast


@pytest.fixture
def lambda_entry(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[dict[str, str], FakeClock], None]]:
    """Install, as the container's authorizer, one composed from ``IDP_*`` variables with an injected clock."""

    def install(env: dict[str, str], clock: FakeClock) -> None:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(handler, "_authorizer", build_authorizer(load_settings(), clock=clock))

    yield install
    handler.close()


def call(token: str) -> str:
    return outcome_of(lambda: handler.handler(rest_token(token), None))


# -- item 3: a kid the key set could not be checked for ---------------------------------------


def key_set_env(server: FaultServer) -> dict[str, str]:
    return {
        "IDP_PROVIDER": "jwks",
        "IDP_ISSUER": server.issuer,
        "IDP_JWKS_URL": server.jwks_url,
        "IDP_AUDIENCE": "demo-api",
        "IDP_ALLOW_LOOPBACK_HTTP": "true",
        "IDP_JWKS_COOLDOWN_SECONDS": "30",  # the penalty box is armed, as in production
        "IDP_NEGATIVE_CACHE_SECONDS": "300",  # a 401 would be remembered for the whole test
        "IDP_TOKEN_CACHE_SECONDS": "300",
    }


@pytest.fixture
def key_server() -> Iterator[FaultServer]:
    with FaultServer() as server:
        yield server


def test_a_new_kid_during_a_key_set_outage_is_a_500_then_accepted_after_recovery(key_server, lambda_entry):
    clock = FakeClock()
    lambda_entry(key_set_env(key_server), clock)
    assert call(key_server.mint(iat=None)) == "allow"  # the key set is cached and fresh
    key_server.idp.rotate_keys()
    key_server.set(JWKS, status(503))
    rotated = key_server.mint(iat=None)  # signed with a kid the cached key set lacks
    assert call(rotated) == "unavailable"  # the refresh failed: an outage, not a bad token
    assert key_server.hits[JWKS] == 2
    assert call(rotated) == "unavailable"  # failure backoff: fail fast, still not a verdict
    assert key_server.hits[JWKS] == 2
    key_server.heal()
    clock.advance(RETRY_AFTER + 0.1)
    assert call(rotated) == "allow"  # neither negatively cached nor penalty-boxed
    assert call(rotated) == "allow"
    assert key_server.hits[JWKS] == 3  # one refetch after the recovery


def test_an_unknown_kid_the_idp_confirms_is_still_a_401_and_penalty_boxed(key_server, lambda_entry):
    lambda_entry(key_set_env(key_server), FakeClock())
    assert call(key_server.mint(iat=None)) == "allow"
    made_up = [key_server.mint(iat=None, header={"kid": f"made-up-{i}"}) for i in range(3)]
    assert [call(token) for token in made_up] == ["unauthorized"] * 3
    assert key_server.hits[JWKS] == 2  # one refresh confirmed the first; the penalty box answered the others


# -- item 3: introspection 400s ----------------------------------------------------------------

SECRET_MARKER = "do-not-log-this-description"


def introspection_env(server: IntrospectionServer, secret: str = BASIC.client_secret) -> dict[str, str]:
    return {
        "IDP_PROVIDER": "introspection",
        "IDP_INTROSPECTION_URL": server.url,
        "IDP_CLIENT_ID": BASIC.client_id,
        "IDP_CLIENT_SECRET": secret,
        "IDP_ALLOW_LOOPBACK_HTTP": "true",
        "IDP_NEGATIVE_CACHE_SECONDS": "300",
    }


@pytest.fixture
def introspection() -> Iterator[IntrospectionServer]:
    with IntrospectionServer() as server:
        yield server


def error_body(error: str) -> bytes:
    return json.dumps({"error": error, "error_description": SECRET_MARKER}).encode()


def test_a_400_invalid_client_for_a_wrong_secret_is_a_500_asked_again(introspection, configure, capsys, caplog):
    introspection.client_error_status = 400  # RFC 6749 section 5.2 allows 400 for invalid_client
    configure(introspection_env(introspection, secret="not-the-registered-secret"))
    token = introspection.issue()
    assert call(token) == "unavailable"
    assert call(token) == "unavailable"
    assert introspection.calls == 2 and introspection.auth_failures == ["wrong id or secret"] * 2
    captured = capsys.readouterr()
    logged = captured.out + captured.err + caplog.text
    assert "introspection_invalid_client" in logged
    assert "not-the-registered-secret" not in logged and token not in logged


@pytest.mark.parametrize("error", ["invalid_client", "unauthorized_client", "invalid_request"])
def test_an_introspection_400_blaming_the_client_is_a_500_not_cached(introspection, configure, capsys, error):
    configure(introspection_env(introspection))
    introspection.fault = status(400, error_body(error))
    token = introspection.issue()
    assert call(token) == "unavailable"
    assert call(token) == "unavailable"
    assert introspection.calls == 2  # not remembered: the IdP is asked on the next request
    introspection.fault = None  # the configuration is fixed at the IdP
    assert call(token) == "allow"
    assert introspection.calls == 3
    assert SECRET_MARKER not in capsys.readouterr().out  # the IdP's body is never echoed


@pytest.mark.parametrize(
    "body",
    [
        b'{"error":"unsupported_token_type"}',  # panva oidc-provider, for a JWT it will not introspect
        b'{"error":"invalid_token"}',
        b'{"error_description":"no error member"}',
        b"<html>Bad Request</html>",
        b"",
    ],
)
def test_an_introspection_400_about_the_token_is_a_401(introspection, configure, body):
    configure(introspection_env(introspection))
    introspection.fault = status(400, body)
    token = introspection.issue()
    assert call(token) == "unauthorized"
    assert call(token) == "unauthorized"
    assert introspection.calls == 1  # a refusal is remembered (IDP_NEGATIVE_CACHE_SECONDS)


# -- item 5: the shared tier and the reader's own windows ---------------------------------------


@pytest.fixture
def instances(
    introspection: IntrospectionServer, redis_server: CacheServer, build: Callable[..., Authorizer]
) -> Callable[..., Authorizer]:
    """Build "Lambda instances" sharing one redis-server and one clock, each with its own cache settings."""

    def make(clock: FakeClock, **env: str) -> Authorizer:
        return build({**introspection_env(introspection), "IDP_CACHE_URL": redis_server.url, **env}, clock)

    return make


def outcome(authorizer: Authorizer, token: str) -> str:
    return outcome_of(lambda: authorizer.handle(rest_token(token)))


def test_a_reader_reuses_a_shared_active_verdict_only_within_its_own_window(introspection, instances):
    clock = FakeClock()
    writer = instances(clock, IDP_INTROSPECTION_CACHE_SECONDS="300")
    reader = instances(clock, IDP_INTROSPECTION_CACHE_SECONDS="10")
    token = introspection.issue()
    assert outcome(writer, token) == "allow"
    clock.advance(2)
    assert outcome(reader, token) == "allow"  # from the shared tier
    assert introspection.calls == 1
    introspection.revoke(token)
    clock.advance(7)  # 9 s after the IdP answered: inside the reader's window
    assert outcome(reader, token) == "allow"
    assert introspection.calls == 1
    clock.advance(2)  # 11 s: past the reader's window, well inside the writer's
    assert outcome(reader, token) == "unauthorized"  # asked the IdP, which saw the revocation
    assert introspection.calls == 2


def test_a_reader_with_cache_seconds_zero_never_reuses_a_shared_verdict(introspection, instances):
    clock = FakeClock()
    writer = instances(clock, IDP_INTROSPECTION_CACHE_SECONDS="300")
    reader = instances(clock, IDP_INTROSPECTION_CACHE_SECONDS="0")
    token = introspection.issue()
    assert outcome(writer, token) == "allow"
    assert [outcome(reader, token) for _ in range(3)] == ["allow"] * 3
    assert introspection.calls == 4  # every request of the reader went to the IdP
    introspection.revoke(token)
    assert outcome(reader, token) == "unauthorized"


def test_a_reader_bounds_a_shared_refusal_by_its_own_negative_seconds(introspection, instances):
    clock = FakeClock()
    writer = instances(clock, IDP_NEGATIVE_CACHE_SECONDS="300")
    reader = instances(clock, IDP_NEGATIVE_CACHE_SECONDS="5")
    token = "opaque-token-not-active-yet-0123"
    assert outcome(writer, token) == "unauthorized"  # {"active": false}, shared
    assert outcome(reader, token) == "unauthorized"
    assert introspection.calls == 1
    introspection.register(token, active=True, sub="late", exp=int(time.time()) + 300)
    clock.advance(6)  # past the reader's negative window, inside the writer's
    assert outcome(reader, token) == "allow"
    assert introspection.calls == 2


def test_a_shared_verdict_without_answered_at_is_not_reused(introspection, instances, redis_server):
    import redis

    clock = FakeClock()
    writer = instances(clock)
    token = introspection.issue()
    assert outcome(writer, token) == "allow"
    client = redis.Redis(port=redis_server.port)
    (key,) = client.keys("idp:v1:introspect:*")
    entry: dict[str, Any] = json.loads(client.get(key))
    entry["value"].pop("answered_at", None)  # the shape written before answered_at was stored
    client.set(key, json.dumps(entry), ex=300)
    client.close()
    reader = instances(clock)
    assert outcome(reader, token) == "allow"
    assert introspection.calls == 2  # its window cannot be bounded: the reader asked the IdP


@pytest.mark.parametrize("planted", ["allowed", "verified", "insufficient_scope", "idp_timeout", "no-such-code"])
def test_a_planted_shared_refusal_code_is_only_ever_a_refusal(introspection, instances, redis_server, planted):
    """Whoever can write the shared tier cannot turn a stored refusal into an allow (or an outage)."""
    import redis

    clock = FakeClock()
    token = introspection.issue()
    writer = instances(clock)
    assert outcome(writer, token) == "allow"
    client = redis.Redis(port=redis_server.port)
    (key,) = client.keys("idp:v1:introspect:*")
    entry: dict[str, Any] = json.loads(client.get(key))
    entry["value"] = {"refused": planted, "answered_at": clock()}
    client.set(key, json.dumps(entry), ex=300)
    client.close()
    reader = instances(clock)
    assert outcome(reader, token) == "unauthorized"
