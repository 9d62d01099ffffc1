"""aiocache without the client libraries nobody configured: the one module that imports aiocache.

``aiocache/__init__`` imports ``redis`` and ``aiomcache`` whenever they are installed, to register
their backends. With ``IDP_CACHE_URL=memory://`` (the default) neither is used, yet redis alone would
be most of aiocache's import time. Measured with ``python -X importtime -c "import aiocache"`` against
the same with both names blocked first (redis 5.3.1 and aiomcache 0.8.2 installed; aiocache 0.12.3,
Python 3.11, a 2-CPU x86_64 VM under load; 20 fresh processes each, cumulative time of ``aiocache``,
min / median):

- unguarded: 129.0 / 179.7 ms, of which ``redis`` 84.8 / 117.7 ms (``aiomcache`` about 2 ms);
- guarded: 48.0 / 62.6 ms.

The guard saves 81 ms at the minimum (117 ms at the median) of every cold start that uses no shared
cache; an earlier measurement on a quieter machine gave 70 ms.

The guard marks both names unimportable for the duration of that one import and then forgets the
marks, so :func:`redis_backend` and :func:`memcached_backend` can import their client later, only when
``IDP_CACHE_URL`` names it. Every aiocache name the product uses comes from here, so no module has to
be imported before another for the guard to hold (``tests/unit/test_cache_tier.py`` checks both).
"""

from __future__ import annotations

import sys
from typing import Any

_CLIENTS = ("redis", "aiomcache")


def _import_aiocache_without_clients() -> None:
    if "aiocache" in sys.modules:
        return
    blocked = [name for name in _CLIENTS if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]  # None in sys.modules: "import name" raises ImportError
    try:
        import aiocache  # noqa: F401
    finally:
        for name in blocked:
            del sys.modules[name]


_import_aiocache_without_clients()

from aiocache.base import BaseCache  # noqa: E402
from aiocache.serializers import NullSerializer, StringSerializer  # noqa: E402

__all__ = ["BaseCache", "NullSerializer", "StringSerializer", "memcached_backend", "redis_backend"]


def redis_backend() -> Any:
    """aiocache's ``RedisCache`` class, importing ``redis`` now (``ImportError`` without the redis extra)."""
    from aiocache.backends.redis import RedisCache

    return RedisCache


def memcached_backend() -> Any:
    """aiocache's ``MemcachedCache`` class, importing ``aiomcache`` now (``ImportError`` without the extra)."""
    from aiocache.backends.memcached import MemcachedCache

    return MemcachedCache
