"""Many concurrent ``await handler.authorize(event)`` on one instance: right decisions, one upstream call per miss.

Cold start under a burst (one discovery, one key-set fetch for everyone), a key rotation under a
burst (one more fetch), a flood of unknown kids (one fetch, then the penalty box), an outage under a
burst (one attempt, everyone fails closed), and introspection (one call per distinct opaque token
however many requests carry it). A short run of ``benchmarks/soak.py`` checks memory stays bounded.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import oidc_env
from event_factory import BUILDERS
from fault_server import INTROSPECT, JWKS, FaultServer, status
from joserfc.jwk import RSAKey
from outcomes import outcome_of_async

from idp_authorizer import handler

pytestmark = [pytest.mark.hostile, pytest.mark.filterwarnings("ignore::UserWarning")]

API = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod"
ROOT = Path(__file__).resolve().parents[2]


def event_for(token: str, shape: str) -> dict[str, Any]:
    return BUILDERS[shape](token)


def refusal(shape: str) -> str:
    return "false" if shape == "http-v2" else "unauthorized"


def mixed_burst(idp, count: int, rng: random.Random) -> list[tuple[dict[str, Any], str]]:
    """``count`` distinct tokens, half valid (allow), half invalid in assorted ways, in assorted shapes."""
    stranger = RSAKey.generate_key(2048, private=True)
    invalid_kinds = [
        lambda i: idp.mint(alg="ES256", ttl=-10, jti=f"e{i}"),
        lambda i: idp.mint(alg="EdDSA", aud="other-api", jti=f"a{i}"),
        lambda i: idp.mint(alg="ES256", jti=f"s{i}")[:-8] + "AAAAAAAA",
        lambda i: idp.mint(key=stranger, header={"kid": f"unknown-{i}"}),
        lambda i: f"garbage-{i}-{secrets.token_hex(8)}",
        lambda i: idp.mint(alg="EdDSA", iss="https://evil.example", jti=f"i{i}"),
    ]
    burst = []
    for i in range(count):
        shape = rng.choice(["rest-token", "rest-request", "http-v2"])
        if i % 2 == 0:
            token = idp.mint(alg=rng.choice(["ES256", "EdDSA", "ES256", "RS256"]), sub=f"user-{i}")
            burst.append((event_for(token, shape), "allow"))
        else:
            token = invalid_kinds[i % len(invalid_kinds)](i)
            burst.append((event_for(token, shape), refusal(shape)))
    rng.shuffle(burst)
    return burst


async def run_burst(burst: list[tuple[dict[str, Any], str]]) -> list[str]:
    return list(await asyncio.gather(*(outcome_of_async(handler.authorize(event)) for event, _ in burst)))


async def test_cold_burst_of_mixed_tokens_shares_one_discovery_and_one_key_set_fetch(fresh_idp, configure):
    configure(oidc_env(fresh_idp, IDP_JWKS_COOLDOWN_SECONDS="0"))
    burst = mixed_burst(fresh_idp, 400, random.Random(6))
    started = time.perf_counter()
    got = await run_burst(burst)
    elapsed = time.perf_counter() - started
    assert got == [expected for _, expected in burst]
    assert dict(fresh_idp.hits) == {"/.well-known/openid-configuration": 1, "/.well-known/jwks.json": 1}
    assert elapsed < 10, elapsed
    # Again, now warm: the same decisions, no request at all.
    assert await run_burst(burst) == [expected for _, expected in burst]
    assert sum(fresh_idp.hits.values()) == 2


async def test_key_rotation_under_a_burst_costs_one_fetch(fresh_idp, configure):
    configure(oidc_env(fresh_idp, IDP_JWKS_COOLDOWN_SECONDS="30"))
    assert await outcome_of_async(handler.authorize(event_for(fresh_idp.mint(), "rest-token"))) == "allow"
    fresh_idp.rotate_keys()
    burst = [(event_for(fresh_idp.mint(alg="EdDSA", sub=f"u{i}"), "http-v2"), "allow") for i in range(200)]
    assert await run_burst(burst) == ["allow"] * 200
    assert fresh_idp.hits["/.well-known/jwks.json"] == 2


async def test_flood_of_unknown_kids_costs_one_fetch_then_none(fresh_idp, configure):
    configure(oidc_env(fresh_idp, IDP_JWKS_COOLDOWN_SECONDS="30"))
    assert await outcome_of_async(handler.authorize(event_for(fresh_idp.mint(), "rest-token"))) == "allow"
    stranger = RSAKey.generate_key(2048, private=True)
    for round_ in range(2):
        burst = [
            (event_for(fresh_idp.mint(key=stranger, header={"kid": f"k-{round_}-{i}"}), "rest-token"), "unauthorized")
            for i in range(200)
        ]
        assert await run_burst(burst) == ["unauthorized"] * 200
        assert fresh_idp.hits["/.well-known/jwks.json"] == 2
    # Valid tokens were never held up by the flood.
    assert await outcome_of_async(handler.authorize(event_for(fresh_idp.mint(sub="late"), "rest-token"))) == "allow"


async def test_burst_during_an_outage_fails_closed_with_one_attempt(configure):
    with FaultServer() as server:
        configure(
            {
                "IDP_PROVIDER": "jwks",
                "IDP_ISSUER": server.issuer,
                "IDP_JWKS_URL": server.jwks_url,
                "IDP_AUDIENCE": "demo-api",
                "IDP_ALGORITHMS": "RS256,ES256,EdDSA",
                "IDP_ALLOW_LOOPBACK_HTTP": "true",
            }
        )
        server.set(JWKS, status(503))
        burst = [(event_for(server.mint(alg="ES256", sub=f"u{i}"), "rest-token"), "unavailable") for i in range(200)]
        assert await run_burst(burst) == ["unavailable"] * 200
        assert server.hits[JWKS] == 1


async def test_introspection_makes_one_call_per_distinct_token(configure):
    with FaultServer() as server:
        configure(
            {
                "IDP_PROVIDER": "introspection",
                "IDP_INTROSPECTION_URL": server.introspection_url,
                "IDP_CLIENT_ID": "authorizer",
                "IDP_CLIENT_SECRET": secrets.token_urlsafe(16),
                "IDP_ALLOW_LOOPBACK_HTTP": "true",
                "IDP_NEGATIVE_CACHE_SECONDS": "30",
            }
        )
        active = [secrets.token_urlsafe(24) for _ in range(20)]
        inactive = [secrets.token_urlsafe(24) for _ in range(20)]
        for token in active:
            server.active[token] = {"sub": "svc", "scope": "read", "exp": time.time() + 300}
        burst = [(event_for(t, "rest-token"), "allow") for t in active for _ in range(10)]
        burst += [(event_for(t, "http-v2"), "false") for t in inactive for _ in range(10)]
        random.Random(7).shuffle(burst)
        assert await run_burst(burst) == [expected for _, expected in burst]
        assert len(server.authorizations) == 40, "one introspection call per distinct token"
        assert server.hits[INTROSPECT] == 40


def test_soak_smoke_keeps_the_cache_bounded():
    """A few seconds of benchmarks/soak.py: many distinct tokens, cache at its bound, memory flat."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "soak.py"), "--seconds", "6", "--max-entries", "500"],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "PASS" in result.stdout
