"""The in-process cache tier: an aiocache backend with its expiry stored and checked on read, a bound,
no per-call timeout, and a sync fast path over the same entries; and the import guard that keeps
aiocache from loading ``redis`` and ``aiomcache`` when nobody configured them.
"""

from __future__ import annotations

import ast
import asyncio
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiocache.base import BaseCache
from aiocache.plugins import BasePlugin
from clock import FakeClock
from introspection_server import BASIC, IntrospectionServer

from idp_authorizer.infra.cache import BoundedMemoryCache

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cache(clock: FakeClock) -> BoundedMemoryCache:
    return BoundedMemoryCache(max_entries=3, clock=clock)


# -- the aiocache interface ----------------------------------------------------------------------


def test_it_is_an_aiocache_backend_without_a_per_call_timeout(cache: BoundedMemoryCache):
    assert isinstance(cache, BaseCache)
    assert cache.timeout is None  # no asyncio.wait_for around each call


async def test_get_and_set_through_the_aiocache_interface(cache: BoundedMemoryCache):
    assert await cache.set("introspect:a", {"sub": "u"}, ttl=60) is True
    assert await cache.get("introspect:a") == {"sub": "u"}
    assert await cache.get("introspect:missing") is None
    assert await cache.get("introspect:missing", default="none") == "none"


async def test_no_call_waits_on_a_timeout(cache: BoundedMemoryCache, monkeypatch: pytest.MonkeyPatch):
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("asyncio.wait_for called")

    monkeypatch.setattr(asyncio, "wait_for", refuse)
    await cache.set("k", "v", ttl=1)
    assert await cache.get("k") == "v"


async def test_the_sync_path_and_the_interface_share_entries(cache: BoundedMemoryCache, clock: FakeClock):
    cache.put("warm", "from put", clock.now + 10)
    assert await cache.get("warm") == "from put"
    await cache.set("loop", "from set", ttl=10)
    assert cache.get_fresh("loop") == "from set"


# -- freshness: stored with the value, checked on read (no timers) --------------------------------


async def test_a_ttl_becomes_a_deadline_checked_on_read(cache: BoundedMemoryCache, clock: FakeClock):
    await cache.set("k", "v", ttl=5)
    assert not asyncio.get_running_loop()._scheduled  # type: ignore[attr-defined]  # no expiry timer
    clock.now += 4.999
    assert await cache.get("k") == "v"
    clock.now += 0.001  # the deadline itself is past
    assert await cache.get("k") is None
    assert len(cache) == 0  # dropped on the read that found it expired


def test_the_sync_path_checks_the_deadline_too(cache: BoundedMemoryCache, clock: FakeClock):
    cache.put("k", "v", clock.now + 1)
    assert cache.get_fresh("k") == "v"
    clock.now += 1
    assert cache.get_fresh("k") is None
    assert len(cache) == 0


async def test_expiry_holds_across_a_frozen_process(cache: BoundedMemoryCache, clock: FakeClock):
    """Lambda freezes the process between invocations: only the clock moves, no callback runs."""
    await cache.set("k", "v", ttl=60)
    clock.now += 3600  # thawed an hour later
    assert cache.get_fresh("k") is None


async def test_no_ttl_never_expires_and_a_spent_one_is_already_expired(cache: BoundedMemoryCache, clock: FakeClock):
    await cache.set("forever", "v", ttl=None)
    await cache.set("spent", "v", ttl=0)  # aiocache's memory backend would keep this one forever
    await cache.set("past", "v", ttl=-3)
    clock.now += 10**9
    assert cache.get_fresh("forever") == "v"
    assert cache.get_fresh("spent") is None
    assert cache.get_fresh("past") is None


# -- the bound --------------------------------------------------------------------------------


async def test_the_oldest_entry_goes_when_full(cache: BoundedMemoryCache, clock: FakeClock):
    for key in ("a", "b", "c"):
        cache.put(key, key, math.inf)
    await cache.set("d", "d", ttl=None)
    assert len(cache) == 3
    assert cache.get_fresh("a") is None
    assert [cache.get_fresh(k) for k in ("b", "c", "d")] == ["b", "c", "d"]


def test_replacing_an_entry_evicts_nothing(cache: BoundedMemoryCache, clock: FakeClock):
    for key in ("a", "b", "c"):
        cache.put(key, key, math.inf)
    cache.put("b", "b2", math.inf)
    assert len(cache) == 3
    assert [cache.get_fresh(k) for k in ("a", "b", "c")] == ["a", "b2", "c"]


def test_the_bound_is_at_least_one(clock: FakeClock):
    cache = BoundedMemoryCache(max_entries=0, clock=clock)
    cache.put("a", 1, math.inf)
    cache.put("b", 2, math.inf)
    assert len(cache) == 1 and cache.get_fresh("b") == 2


# -- used through the interface where the loop runs ----------------------------------------------


def test_introspection_writes_l1_through_the_aiocache_interface(configure, monkeypatch: pytest.MonkeyPatch):
    """The verdict an IdP call produced is stored with ``await cache.set`` (in the loop) and then
    answered from the sync fast path without entering the loop."""
    from event_factory import rest_token
    from outcomes import outcome_of

    from idp_authorizer import handler

    sets: list[tuple[str, float]] = []

    class Recorder(BasePlugin):  # type: ignore[misc]
        async def post_set(self, client: BaseCache, key: str, value: Any, ttl: float, **kwargs: Any) -> None:
            sets.append((key, ttl))

    with IntrospectionServer() as server:
        authorizer = configure(
            {
                "IDP_PROVIDER": "introspection",
                "IDP_INTROSPECTION_URL": server.url,
                "IDP_CLIENT_ID": BASIC.client_id,
                "IDP_CLIENT_SECRET": BASIC.client_secret,
                "IDP_CLIENT_AUTH": BASIC.method,
                "IDP_ALLOW_LOOPBACK_HTTP": "true",
            }
        )
        authorizer.cache.plugins = [Recorder()]
        good, bad = server.issue(), "not-a-known-token"
        assert [outcome_of(lambda t=t: handler.handler(rest_token(t), None)) for t in (good, bad)] == [
            "allow",
            "unauthorized",
        ]
        assert [key.split(":")[0] for key, _ in sets] == ["introspect", "introspect"]
        assert 0 < sets[0][1] <= 60 and 0 < sets[1][1] <= 10  # IDP_INTROSPECTION_CACHE_SECONDS, NEGATIVE
        monkeypatch.setattr(authorizer, "_run", lambda coroutine: pytest.fail("entered the event loop"))
        assert [outcome_of(lambda t=t: handler.handler(rest_token(t), None)) for t in (good, bad)] == [
            "allow",
            "unauthorized",
        ]
        assert len(sets) == 2


# -- the import guard -----------------------------------------------------------------------------


def _loaded(code: str, env: dict[str, str]) -> dict[str, Any]:
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True, env=env, cwd=ROOT
    )
    return json.loads(run.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _clean_env(**extra: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("IDP_")}, **extra}


PROBE = (
    "import importlib.util, json, sys\n"
    "print(json.dumps({'aiocache': 'aiocache' in sys.modules,\n"
    "  'loaded': sorted(m for m in ('redis', 'aiomcache') if m in sys.modules),\n"
    "  'installed': sorted(m for m in ('redis', 'aiomcache') if importlib.util.find_spec(m))}))"
)


def test_the_handler_without_a_cache_url_loads_neither_client():
    env = _clean_env(
        IDP_PROVIDER="jwks",
        IDP_JWKS_URL="https://idp.example/jwks.json",
        IDP_ISSUER="https://idp.example/",
        IDP_AUDIENCE="api",
    )
    found = _loaded("from idp_authorizer import handler\nassert handler._authorizer is not None\n" + PROBE, env)
    assert found["aiocache"], "the probe is meaningless if aiocache was not imported"
    assert found["installed"] == ["aiomcache", "redis"], (
        "both clients are installed here, so the guard is what kept them out"
    )
    assert found["loaded"] == []


@pytest.mark.parametrize("module", ["idp_authorizer.infra.shared_cache", "idp_authorizer.infra.cache"])
def test_the_guard_needs_no_import_order(module: str):
    found = _loaded(f"import {module}\n" + PROBE, _clean_env())
    assert found["aiocache"] and found["loaded"] == []


def test_a_configured_client_is_still_importable_after_the_guard():
    code = (
        "from idp_authorizer.infra.shared_cache import open_shared_tier\n"
        "assert open_shared_tier('redis://127.0.0.1:1/0') is not None\n" + PROBE
    )
    assert _loaded(code, _clean_env())["loaded"] == ["redis"]


def test_aiocache_is_imported_in_one_place_only():
    """Every import of aiocache goes through the guard, so none can load it unguarded first."""
    importers = set()
    for package in ("idp_authorizer", "providers"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                if isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                if any(name.split(".")[0] == "aiocache" for name in names):
                    importers.add(path.relative_to(ROOT).as_posix())
    assert importers == {"idp_authorizer/infra/aiocache_guard.py"}
