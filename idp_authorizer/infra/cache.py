"""The in-process cache tier (L1): an aiocache backend with explicit freshness and a size bound.

aiocache's own memory backend expires entries with event-loop timers, which do not fire while Lambda
freezes the process, and it has no size bound. :class:`BoundedMemoryCache` stores every value with its
``expires_at`` and checks it on read, evicts the oldest entry when full, and runs with no per-call
``wait_for`` timeout (``timeout=None``: ``asyncio.wait_for`` would add several µs to each call).

It is used two ways, over the same entries:

- through aiocache's interface (``await cache.set(key, value, ttl=...)``, ``await cache.get(key)``)
  in coroutines, where the event loop already runs, like any other aiocache backend; the Redis and
  Memcached tiers (:mod:`idp_authorizer.infra.shared_cache`) are aiocache backends too;
- synchronously (:meth:`~BoundedMemoryCache.get_fresh`, :meth:`~BoundedMemoryCache.put`) on the warm
  path, so a repeated token is answered without entering the event loop.
"""

from __future__ import annotations

import math
import time
from typing import Any

from idp_authorizer.core.clock import Clock
from idp_authorizer.infra.aiocache_guard import BaseCache, NullSerializer


class BoundedMemoryCache(BaseCache):  # type: ignore[misc]  # aiocache is untyped
    """Bounded in-process aiocache backend; values expire by their stored deadline, not by timers."""

    NAME = "bounded-memory"

    def __init__(self, max_entries: int = 10_000, clock: Clock = time.time) -> None:
        super().__init__(serializer=NullSerializer(), timeout=None)
        self.max_entries = max(1, max_entries)
        self.clock = clock
        self._data: dict[str, tuple[Any, float]] = {}

    # -- the sync fast path -------------------------------------------------------------------

    def get_fresh(self, key: str) -> Any:
        """The value under ``key`` if it has not expired, else ``None`` (and the entry is dropped)."""
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry[1] > self.clock():
            return entry[0]
        self._data.pop(key, None)
        return None

    def put(self, key: str, value: Any, expires_at: float) -> None:
        """Store ``value`` until ``expires_at`` (epoch seconds); the oldest entry goes when full."""
        data = self._data
        if key not in data and len(data) >= self.max_entries:
            del data[next(iter(data))]
        data[key] = (value, expires_at)

    def __len__(self) -> int:
        return len(self._data)

    # -- aiocache's backend primitives, behind BaseCache.get and BaseCache.set ----------------

    async def _get(self, key: str, encoding: str = "utf-8", _conn: Any = None) -> Any:
        return self.get_fresh(key)

    async def _set(
        self, key: str, value: Any, ttl: float | None = None, _cas_token: Any = None, _conn: Any = None
    ) -> bool:
        """``ttl`` is seconds from now on this cache's clock, ``None`` for no expiry.

        Unlike aiocache's memory backend, a ``ttl`` of 0 or less stores an entry that is already
        expired (a deadline computed by the caller has passed), never one that lives forever.
        """
        self.put(key, value, math.inf if ttl is None else self.clock() + ttl)
        return True
