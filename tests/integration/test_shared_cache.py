"""The shared cache tier against a real ``redis-server`` and a real ``memcached`` on 127.0.0.1.

Two authorizers built independently by the composition root (each with its own in-process L1, as two
Lambda instances would be) share introspection results, key sets and discovery documents through L2;
values are JSON with their expiry inside, under ``idp:v1:`` keys that never contain a token; a shared
cache going away changes no decision.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from event_factory import rest_token
from fault_server import blackhole_url
from introspection_server import BASIC, IntrospectionServer
from outcomes import outcome_of_async
from servers import CacheServer

from idp_authorizer.aws.compose import build_authorizer
from idp_authorizer.aws.runtime import Authorizer
from idp_authorizer.aws.settings import load_settings
from idp_authorizer.core.errors import ConfigurationError
from idp_authorizer.infra.shared_cache import parse_cache_url
from idp_authorizer.tools.devidp import DevIdp

# aiocache's Redis backend still calls redis-py's deprecated close() when it closes.
pytestmark = pytest.mark.filterwarnings("ignore:Call to deprecated close:DeprecationWarning")


@pytest.fixture
def server() -> Iterator[IntrospectionServer]:
    with IntrospectionServer() as srv:
        yield srv


@pytest.fixture(params=["redis", "memcached"])
def cache_server(request: pytest.FixtureRequest) -> CacheServer:
    fixture = "redis_server" if request.param == "redis" else "memcached_server"
    return request.getfixturevalue(fixture)  # type: ignore[no-any-return]


@pytest.fixture
def shared_log() -> Iterator[list[logging.LogRecord]]:
    """Records of the shared-cache logger (however logging was configured by earlier tests)."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("idp_authorizer.shared_cache")
    handler = Keep(logging.DEBUG)
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def settings_env(
    monkeypatch: pytest.MonkeyPatch, idp: DevIdp, srv: IntrospectionServer, cache_url: str, **extra: str
) -> None:
    providers = [
        {"name": "jwt", "provider": "oidc", "issuer": idp.issuer, "audience": [idp.audience]},
        {
            "name": "opaque",
            "provider": "introspection",
            "introspection_url": srv.url,
            "client_id": BASIC.client_id,
            "client_secret": BASIC.client_secret,
        },
    ]
    env = {
        "IDP_PROVIDERS": json.dumps(providers),
        "IDP_ALLOW_LOOPBACK_HTTP": "true",
        "IDP_CACHE_URL": cache_url,
        "IDP_LOG_LEVEL": "WARNING",
        **extra,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def instance() -> Authorizer:
    """One more "Lambda instance": its own settings parse, HTTP client, L1 and L2 connection."""
    return build_authorizer(load_settings())


async def close(*authorizers: Authorizer) -> None:
    for authorizer in authorizers:
        for provider in authorizer.router.providers:
            await provider.close()  # type: ignore[attr-defined]


async def outcomes(authorizer: Authorizer, tokens: list[str]) -> list[str]:
    return [await outcome_of_async(authorizer.authorize(rest_token(token))) for token in tokens]


async def test_two_instances_make_one_introspection_call_per_distinct_token(
    fresh_idp, server, cache_server, monkeypatch
):
    settings_env(monkeypatch, fresh_idp, server, cache_server.url)
    first, second = instance(), instance()
    tokens = [server.issue(sub=f"user-{i}") for i in range(5)] + ["revoked-or-unknown-token-0123"]
    expected = ["allow"] * 5 + ["unauthorized"]
    assert await outcomes(first, tokens) == expected
    assert await outcomes(second, tokens) == expected
    assert await outcomes(second, tokens[::-1]) == expected[::-1]  # L1 now
    third = instance()
    assert await outcomes(third, tokens) == expected
    assert server.calls == 6 and set(server.calls_by_token.values()) == {1}
    # The key set and discovery document are shared too: one fetch between three instances.
    for authorizer in (first, second, third):
        assert await outcome_of_async(authorizer.authorize(rest_token(fresh_idp.mint()))) == "allow"
    assert fresh_idp.hits["/.well-known/openid-configuration"] == 1
    assert fresh_idp.hits["/.well-known/jwks.json"] == 1
    await close(first, second, third)


def test_lambda_entry_shares_through_the_cache_too(fresh_idp, server, cache_server, monkeypatch):
    """The synchronous handler path (one event loop per container) uses the shared tier the same way."""
    settings_env(monkeypatch, fresh_idp, server, cache_server.url)
    first, second = instance(), instance()
    token, jwt = server.issue(sub="user-1"), fresh_idp.mint()
    for authorizer in (first, second, first):
        assert authorizer.handle(rest_token(token))["principalId"] == "user-1"
        assert authorizer.handle(rest_token(jwt))["principalId"] == "user-123"
    assert server.calls == 1 and fresh_idp.hits["/.well-known/jwks.json"] == 1
    first.close()
    second.close()


async def test_instances_interleaved_still_one_call_per_token(fresh_idp, server, redis_server, monkeypatch):
    settings_env(monkeypatch, fresh_idp, server, redis_server.url)
    first, second = instance(), instance()
    tokens = [server.issue(sub=f"user-{i}") for i in range(6)]
    for i, token in enumerate(tokens):
        one, other = (first, second) if i % 2 else (second, first)
        assert await outcome_of_async(one.authorize(rest_token(token))) == "allow"
        assert await outcome_of_async(other.authorize(rest_token(token))) == "allow"
    assert server.calls == 6
    await close(first, second)


async def test_values_are_json_with_expiry_under_versioned_keys_never_the_token(
    fresh_idp, server, redis_server, monkeypatch
):
    import redis.asyncio

    settings_env(monkeypatch, fresh_idp, server, redis_server.url)
    authorizer = instance()
    token, jwt = server.issue(sub="user-1"), fresh_idp.mint()
    await authorizer.authorize(rest_token(token))
    await authorizer.authorize(rest_token(jwt))
    client = redis.asyncio.Redis(port=redis_server.port)
    every_key = sorted(key.decode() for key in await client.keys("*"))
    assert all(key.startswith("idp:v1:") and token not in key for key in every_key)
    # The short-lived marker instances take before introspecting (one IdP call between them) holds no data.
    claims = [key for key in every_key if key.split(":")[2] == "claim"]
    assert len(claims) == 1 and await client.get(claims[0]) == b"1" and 0 < await client.ttl(claims[0]) <= 1
    keys = [key for key in every_key if key not in claims]
    kinds = sorted(key.split(":")[2] for key in keys)
    assert kinds == ["discovery", "introspect", "jwks"]
    introspect_key = next(key for key in keys if ":introspect:" in key)
    assert introspect_key.endswith(":" + hashlib.sha256(token.encode()).hexdigest())
    now = time.time()
    for key in keys:
        raw = await client.get(key)
        assert token.encode() not in raw and jwt.encode() not in raw and token not in key
        value = json.loads(raw)  # JSON, never pickle
        assert set(value) == {"expires_at", "value"} and value["expires_at"] > now
        assert 0 < await client.ttl(key) <= value["expires_at"] - now + 1
    stored = json.loads(await client.get(introspect_key))
    assert stored["value"]["response"]["sub"] == "user-1" and stored["value"]["response"]["active"] is True
    assert stored["expires_at"] <= now + 60 + 1  # IDP_INTROSPECTION_CACHE_SECONDS default
    await client.aclose()
    await close(authorizer)


async def test_expired_or_garbage_shared_values_are_ignored(fresh_idp, server, redis_server, monkeypatch):
    import redis.asyncio

    settings_env(monkeypatch, fresh_idp, server, redis_server.url)
    first = instance()
    token = server.issue()
    assert await outcome_of_async(first.authorize(rest_token(token))) == "allow"
    client = redis.asyncio.Redis(port=redis_server.port)
    key = next(k for k in await client.keys("idp:v1:introspect:*"))
    stale = json.loads(await client.get(key))
    stale["expires_at"] = time.time() - 1  # the backend TTL says alive, the value says expired
    await client.set(key, json.dumps(stale), ex=300)
    server.revoke(token)
    second = instance()
    assert await outcome_of_async(second.authorize(rest_token(token))) == "unauthorized"
    assert server.calls == 2
    for garbage in (b"\x80\x04pickle", b"[]", b'{"expires_at": "x", "value": {}}', b"{"):
        await client.set(key, garbage, ex=300)
        other = server.issue()
        assert await outcome_of_async(instance().authorize(rest_token(other))) == "allow"
    await client.aclose()
    await close(first, second)


async def test_a_refusal_by_local_rules_is_not_shared_but_the_idps_no_is(server, redis_server, monkeypatch):
    def build(audience: str) -> Authorizer:
        provider = {
            "provider": "introspection",
            "introspection_url": server.url,
            "client_id": BASIC.client_id,
            "client_secret": BASIC.client_secret,
            "audience": [audience],
        }
        monkeypatch.setenv("IDP_PROVIDERS", json.dumps([provider]))
        monkeypatch.setenv("IDP_ALLOW_LOOPBACK_HTTP", "true")
        monkeypatch.setenv("IDP_CACHE_URL", redis_server.url)
        return instance()

    other_api, this_api = build("urn:other"), build("urn:api")
    token = server.issue(aud="urn:api")
    assert await outcome_of_async(other_api.authorize(rest_token(token))) == "unauthorized"  # wrong_audience
    assert await outcome_of_async(this_api.authorize(rest_token(token))) == "allow"
    assert server.calls == 2
    unknown = "never-issued-opaque-token-0123"
    assert await outcome_of_async(other_api.authorize(rest_token(unknown))) == "unauthorized"
    assert await outcome_of_async(this_api.authorize(rest_token(unknown))) == "unauthorized"
    assert server.calls == 3  # {"active": false} holds for everyone
    await close(other_api, this_api)


async def test_cache_going_away_mid_run_changes_no_decision(fresh_idp, server, redis_server, monkeypatch, shared_log):
    settings_env(monkeypatch, fresh_idp, server, redis_server.url, IDP_INTROSPECTION_CACHE_SECONDS="1")
    first, second = instance(), instance()
    revoked = server.issue(sub="revoked")
    tokens = [
        server.issue(sub="active"),
        revoked,
        "never-issued-opaque-token-0123",
        fresh_idp.mint(),
        fresh_idp.mint(ttl=-10),
        fresh_idp.mint(aud="someone-else"),
    ]
    expected = ["allow", "allow", "unauthorized", "allow", "unauthorized", "unauthorized"]
    assert await outcomes(first, tokens) == expected
    redis_server.kill()
    started = time.monotonic()
    assert await outcomes(first, tokens) == expected  # L1
    assert await outcomes(second, tokens) == expected  # a fresh instance: L2 is gone, the IdP answers
    assert time.monotonic() - started < 2.0
    server.revoke(revoked)
    time.sleep(1.1)
    expected[1] = "unauthorized"
    assert await outcomes(first, tokens) == expected
    assert await outcomes(instance(), tokens) == expected
    warnings = [r for r in shared_log if r.levelno == logging.WARNING]
    assert warnings and "shared cache unavailable" in warnings[0].getMessage()
    assert len(warnings) <= 3  # one line per instance and outage, not one per request
    await close(first, second)


async def test_unreachable_cache_costs_one_short_timeout_then_is_skipped(fresh_idp, server, monkeypatch, shared_log):
    with blackhole_url("/0") as url:
        settings_env(monkeypatch, fresh_idp, server, url.replace("http://", "redis://"))
        authorizer = instance()
        started = time.monotonic()
        tokens = [server.issue(sub=f"user-{i}") for i in range(10)]
        assert await outcomes(authorizer, tokens) == ["allow"] * 10
        assert time.monotonic() - started < 1.5
        assert server.calls == 10
        await close(authorizer)
    assert any(r.levelno == logging.WARNING for r in shared_log)


async def test_key_rotation_seen_by_another_instance_through_the_shared_tier(
    fresh_idp, server, redis_server, monkeypatch
):
    settings_env(monkeypatch, fresh_idp, server, redis_server.url, IDP_JWKS_COOLDOWN_SECONDS="0")
    first, second = instance(), instance()
    assert await outcome_of_async(first.authorize(rest_token(fresh_idp.mint()))) == "allow"
    assert await outcome_of_async(second.authorize(rest_token(fresh_idp.mint()))) == "allow"
    assert fresh_idp.hits["/.well-known/jwks.json"] == 1
    fresh_idp.rotate_keys()
    assert await outcome_of_async(first.authorize(rest_token(fresh_idp.mint()))) == "allow"  # unknown kid: IdP
    assert fresh_idp.hits["/.well-known/jwks.json"] == 2
    assert await outcome_of_async(second.authorize(rest_token(fresh_idp.mint()))) == "allow"  # the newer shared set
    assert fresh_idp.hits["/.well-known/jwks.json"] == 2
    await close(first, second)


async def test_instances_missing_together_make_one_call(fresh_idp, server, redis_server, monkeypatch):
    # Several instances miss the same token at the same moment: one asks the IdP, the others wait for its answer.
    settings_env(monkeypatch, fresh_idp, server, redis_server.url)
    instances = [instance() for _ in range(4)]
    tokens = [server.issue(sub=f"user-{i}") for i in range(5)]
    outcomes = await asyncio.gather(*(outcome_of_async(a.authorize(rest_token(t))) for a in instances for t in tokens))
    assert outcomes == ["allow"] * 20
    assert server.calls == 5 and set(server.calls_by_token.values()) == {1}
    await close(*instances)


async def test_rotation_when_every_instance_saved_the_old_set_in_turn(fresh_idp, server, redis_server, monkeypatch):
    # Found by benchmarks/load.py: instances started together each save the old key set; the one saved
    # last is "newer" than the others' but still lacks the new kid. It must not be taken for a refresh.
    settings_env(monkeypatch, fresh_idp, server, redis_server.url, IDP_JWKS_COOLDOWN_SECONDS="30")
    first, second = instance(), instance()
    assert await outcome_of_async(first.authorize(rest_token(fresh_idp.mint()))) == "allow"
    second_store: Any = second.router.providers[0].store
    second_store.document.fetched_at = -float("inf")  # as if it had fetched before the first one saved
    assert await outcome_of_async(second.authorize(rest_token(fresh_idp.mint()))) == "allow"
    fresh_idp.rotate_keys()
    hits = fresh_idp.hits["/.well-known/jwks.json"]
    first_store: Any = first.router.providers[0].store
    first_store.document.fetched_at -= 1  # the shared copy is newer than this instance's, but old
    assert await outcome_of_async(first.authorize(rest_token(fresh_idp.mint()))) == "allow"
    assert fresh_idp.hits["/.well-known/jwks.json"] == hits + 1
    await close(first, second)


async def test_memcached_values_are_json_too(fresh_idp, server, memcached_server, monkeypatch):
    settings_env(monkeypatch, fresh_idp, server, memcached_server.url)
    token = server.issue()
    await instance().authorize(rest_token(token))
    digest = hashlib.sha256(token.encode()).hexdigest()
    authorizer = instance()
    provider: Any = authorizer.router.introspector
    key = "idp:v1:" + provider._key(token)
    assert key.endswith(digest)
    reply = memcached_server.command(f"get {key}\r\n".encode())
    body = reply.split(b"\r\n")[1]
    assert token.encode() not in reply and json.loads(body)["value"]["response"]["active"] is True
    await close(authorizer)


# -- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("memory://", None),
        ("redis://cache.internal:6380/2", ("redis", "cache.internal", 6380, 2, None, None)),
        ("rediss://user:p%40ss@cache.internal/0", ("rediss", "cache.internal", 6379, 0, "user", "p@ss")),
        ("memcached://10.0.0.5:11211", ("memcached", "10.0.0.5", 11211, 0, None, None)),
    ],
)
def test_cache_url_forms(url, expected):
    parsed = parse_cache_url(url)
    assert (
        parsed and (parsed.scheme, parsed.host, parsed.port, parsed.db, parsed.username, parsed.password)
    ) == expected


@pytest.mark.parametrize(
    "url", ["redis://:hunter2@host:notaport/0", "redis://host/db", "memcached://host/x", "ftp://x"]
)
def test_bad_cache_url_names_the_variable_never_the_value(url):
    with pytest.raises(ConfigurationError) as caught:
        parse_cache_url(url)
    assert "IDP_CACHE_URL" in str(caught.value) and "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("cache_url", "loaded"),
    [("memory://", set()), ("redis://127.0.0.1:1/0", {"redis"}), ("memcached://127.0.0.1:1", {"aiomcache"})],
)
def test_client_libraries_are_imported_only_when_configured(cache_url, loaded, server):
    code = (
        "import sys\n"
        "from idp_authorizer import handler\n"
        "assert handler._authorizer is not None\n"
        "print(sorted(m for m in ('redis', 'aiomcache') if m in sys.modules))\n"
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("IDP_")},
        "IDP_PROVIDER": "introspection",
        "IDP_INTROSPECTION_URL": server.url,
        "IDP_CLIENT_ID": "c",
        "IDP_CLIENT_SECRET": "s",
        "IDP_ALLOW_LOOPBACK_HTTP": "true",
        "IDP_CACHE_URL": cache_url,
    }
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip().splitlines()[-1] == str(sorted(loaded))
