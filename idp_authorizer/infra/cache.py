"""Caches with explicit freshness: every value carries its own ``expires_at``, checked on read.

aiocache's memory backend expires entries with event-loop timers, which do not fire while Lambda
freezes the process, and it has no size bound. :class:`BoundedMemoryCache` is an aiocache backend
that stores ``(value, expires_at)`` under a bound, has no per-call ``wait_for`` timeout, and also
answers synchronously so a warm hit is served without entering the event loop.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any

from idp_authorizer.core.clock import Clock


def _import_aiocache_without_clients() -> None:
    """Import aiocache without paying for client libraries nobody configured.

    ``aiocache/__init__`` imports ``redis`` and ``aiomcache`` whenever they are installed (~70 ms of
    cold start for redis). Blocking them for the duration of that import keeps them out; the shared
    tier imports its backend module explicitly when ``IDP_CACHE_URL`` asks for it.
    """
    if "aiocache" in sys.modules:
        return
    blocked = [name for name in ("redis", "aiomcache") if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        import aiocache  # noqa: F401
    finally:
        for name in blocked:
            del sys.modules[name]


_import_aiocache_without_clients()

from aiocache.base import BaseCache  # noqa: E402
from aiocache.serializers import NullSerializer  # noqa: E402


class BoundedMemoryCache(BaseCache):  # type: ignore[misc]  # aiocache is untyped
    """Bounded in-process aiocache backend; values expire by their stored deadline, not by timers."""

    NAME = "bounded-memory"

    def __init__(self, max_entries: int = 10_000, clock: Clock = time.time, **kwargs: Any) -> None:
        super().__init__(serializer=NullSerializer(), timeout=None, **kwargs)
        self.max_entries = max(1, max_entries)
        self.clock = clock
        self._data: dict[str, tuple[Any, float]] = {}

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

    async def _get(self, key: str, encoding: str = "utf-8", _conn: Any = None) -> Any:
        return self.get_fresh(key)

    async def _gets(self, key: str, encoding: str = "utf-8", _conn: Any = None) -> Any:
        return self.get_fresh(key)

    async def _multi_get(self, keys: list[str], encoding: str = "utf-8", _conn: Any = None) -> list[Any]:
        return [self.get_fresh(key) for key in keys]

    async def _set(
        self, key: str, value: Any, ttl: float | None = None, _cas_token: Any = None, _conn: Any = None
    ) -> bool:
        self.put(key, value, self.clock() + ttl if ttl else math.inf)
        return True

    async def _multi_set(self, pairs: list[tuple[str, Any]], ttl: float | None = None, _conn: Any = None) -> bool:
        for key, value in pairs:
            await self._set(key, value, ttl)
        return True

    async def _add(self, key: str, value: Any, ttl: float | None = None, _conn: Any = None) -> bool:
        if self.get_fresh(key) is not None:
            raise ValueError("key already exists")
        return await self._set(key, value, ttl)

    async def _exists(self, key: str, _conn: Any = None) -> bool:
        return self.get_fresh(key) is not None

    async def _delete(self, key: str, _conn: Any = None) -> int:
        return 1 if self._data.pop(key, None) is not None else 0

    async def _expire(self, key: str, ttl: float, _conn: Any = None) -> bool:
        value = self.get_fresh(key)
        if value is None:
            return False
        self.put(key, value, self.clock() + ttl if ttl else math.inf)
        return True

    async def _clear(self, namespace: str | None = None, _conn: Any = None) -> bool:
        if namespace:
            for key in [k for k in self._data if k.startswith(namespace)]:
                del self._data[key]
        else:
            self._data.clear()
        return True

    async def _increment(self, key: str, delta: int, _conn: Any = None) -> int:
        value = int(self.get_fresh(key) or 0) + delta
        self.put(key, value, self._data.get(key, (None, math.inf))[1])
        return value

    async def _raw(self, command: str, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("the bounded memory tier has no raw commands")

    async def _redlock_release(self, key: str, value: Any) -> int:
        if self.get_fresh(key) == value:
            return await self._delete(key)
        return 0

    async def _close(self, *args: Any, **kwargs: Any) -> None:
        return None
