"""The shared cache tier (L2): Redis or Memcached behind the in-process tier, chosen by ``IDP_CACHE_URL``.

Lambda instances share introspection results, key sets and discovery documents through it instead of
each asking the IdP. The in-process :class:`~idp_authorizer.infra.cache.BoundedMemoryCache` stays in front
(L1); this tier is asked only on an L1 miss.

- JSON only, never pickle: whoever can write to the shared cache must not be able to run code here.
  (They could still plant keys or verdicts: the shared cache is inside the trust boundary.)
- Keys are namespaced and versioned, ``idp:v1:<kind>:...:<sha256>``; a token is never a key or a value.
- Every value carries its own ``expires_at``, checked on read; backend TTLs are only housekeeping.
  A reader may bound reuse further by its own settings (introspection verdicts carry ``answered_at``).
- An outage is never an error for the caller: a short timeout, one WARNING line, then this tier is
  skipped for a few seconds (L1 and the IdP serve meanwhile) and tried again.
- Redis and Memcached are served by aiocache's own backends, used through the same aiocache
  interface (``get``, ``set``, ``add``, ``close``) as the in-process tier. Their client libraries,
  ``redis`` and ``aiomcache``, are optional extras imported only when ``IDP_CACHE_URL`` names them
  (:mod:`idp_authorizer.infra.aiocache_guard` keeps aiocache from importing them on its own).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from idp_authorizer.core.clock import Clock
from idp_authorizer.core.errors import ConfigurationError, Reason
from idp_authorizer.core.principal import fingerprint
from idp_authorizer.infra.aiocache_guard import BaseCache, StringSerializer, memcached_backend, redis_backend

logger = logging.getLogger("idp_authorizer.shared_cache")

KEY_PREFIX = "idp:v1"
"""Bump the version when the shape of a stored value changes, so old and new instances never mix.

Not bumped for a member that old readers ignore and new readers require (an introspection verdict's
``answered_at``): during a deployment old instances keep reading new values as before, new instances
treat old values as absent, and key sets and discovery documents stay shared across the change."""
TIMEOUT_SECONDS = 0.25
"""Per call: a shared cache slower than this is treated as down (the IdP is then usually faster)."""
RETRY_AFTER_SECONDS = 5.0
MAX_VALUE_BYTES = 256 * 1024


def shared_key(kind: str, *parts: str) -> str:
    """``idp:v1:<kind>:<part>...``; callers pass hashes, never a token or a URL with credentials."""
    return ":".join((KEY_PREFIX, kind, *parts))


class SharedTier:
    """One shared backend with freshness checked on read and outages absorbed."""

    def __init__(
        self,
        connect: Callable[[], BaseCache],
        errors: tuple[type[Exception], ...],
        *,
        clock: Clock = time.time,
    ) -> None:
        self._connect = connect
        self._errors: tuple[type[Exception], ...] = (*errors, OSError, EOFError, TimeoutError)
        self._clock = clock
        self._backend: tuple[asyncio.AbstractEventLoop, BaseCache] | None = None
        self._skip_until = -math.inf
        self._down = False

    @property
    def available(self) -> bool:
        return self._clock() >= self._skip_until

    async def get(self, key: str) -> tuple[dict[str, Any], float] | None:
        """``(value, expires_at)`` under ``key`` if present, well-formed and not expired; else ``None``."""
        if not self.available:
            return None
        try:
            raw = await self._client().get(key)
        except self._errors as exc:
            self._failed(exc)
            return None
        self._recovered()
        return self._decode(raw)

    async def set(self, key: str, value: dict[str, Any], expires_at: float) -> None:
        """Store ``value`` until ``expires_at`` (epoch seconds); silently skipped when impossible."""
        ttl = math.ceil(expires_at - self._clock())
        text = json.dumps({"expires_at": expires_at, "value": value}, separators=(",", ":"), allow_nan=False)
        if ttl <= 0 or len(text) > MAX_VALUE_BYTES or not self.available:
            return
        try:
            await self._client().set(key, text, ttl=ttl)
        except self._errors as exc:
            self._failed(exc)
            return
        self._recovered()

    async def claim(self, key: str, seconds: float) -> bool:
        """Take a short-lived marker (``SET NX`` / memcached ``add``): ``True`` when this caller should do the work.

        Used so that instances missing the same entry at the same moment ask the IdP once between them.
        Any doubt (outage, unavailable tier) answers ``True``: the marker saves calls, it never gates a decision.
        """
        if not self.available:
            return True
        try:
            await self._client().add(key, "1", ttl=max(1, math.ceil(seconds)))
        except ValueError:
            return False  # someone else holds it
        except self._errors as exc:
            self._failed(exc)
            return True
        self._recovered()
        return True

    async def close(self) -> None:
        if self._backend is not None:
            loop, backend = self._backend
            self._backend = None
            if loop is asyncio.get_running_loop():
                try:
                    await backend.close()
                except self._errors:
                    logger.debug("shared cache close failed")

    def _client(self) -> BaseCache:
        """The backend for the running loop (connections belong to the loop that opened them)."""
        loop = asyncio.get_running_loop()
        if self._backend is None or self._backend[0] is not loop:
            self._backend = (loop, self._connect())
        return self._backend[1]

    def _decode(self, raw: object) -> tuple[dict[str, Any], float] | None:
        if not isinstance(raw, str | bytes):
            return None
        try:
            entry = json.loads(raw)
        except (ValueError, RecursionError):
            return None
        if not isinstance(entry, dict):
            return None
        expires_at, value = entry.get("expires_at"), entry.get("value")
        if isinstance(expires_at, bool) or not isinstance(expires_at, int | float) or not isinstance(value, dict):
            return None
        return (value, float(expires_at)) if expires_at > self._clock() else None

    def _failed(self, exc: BaseException) -> None:
        self._skip_until = self._clock() + RETRY_AFTER_SECONDS
        self._backend = None  # reconnect from scratch next time
        if not self._down:
            self._down = True
            logger.warning(
                "shared cache unavailable (%s): using the in-process cache and the IdP, retrying in %.0f s",
                type(exc).__name__,
                RETRY_AFTER_SECONDS,
            )

    def _recovered(self) -> None:
        if self._down:
            self._down = False
            logger.warning("shared cache available again")


class SharedDocuments:
    """IdP documents (key sets, discovery) shared across instances under ``idp:v1:<kind>:<sha256(url)>``."""

    def __init__(self, tier: SharedTier, kind: str) -> None:
        self._tier = tier
        self._kind = kind

    async def load(self, url: str) -> tuple[dict[str, Any], float] | None:
        """``(document, fetched_at)`` stored by any instance, or ``None``."""
        found = await self._tier.get(shared_key(self._kind, fingerprint(url)))
        if found is None:
            return None
        value = found[0]
        document, fetched_at = value.get("document"), value.get("fetched_at")
        if not isinstance(document, dict) or isinstance(fetched_at, bool) or not isinstance(fetched_at, int | float):
            return None
        return document, float(fetched_at)

    async def save(self, url: str, document: dict[str, Any], fetched_at: float, max_age: float) -> None:
        value = {"document": document, "fetched_at": fetched_at}
        await self._tier.set(shared_key(self._kind, fingerprint(url)), value, fetched_at + max_age)

    async def close(self) -> None:
        await self._tier.close()


@dataclass(frozen=True, slots=True)
class CacheUrl:
    """A parsed ``IDP_CACHE_URL``: ``redis[s]://[user:password@]host:port/db`` or ``memcached://host:port``."""

    scheme: str
    host: str
    port: int
    db: int = 0
    username: str | None = None
    password: str | None = None


def parse_cache_url(url: str) -> CacheUrl | None:
    """``None`` for ``memory://`` (no shared tier); raises :class:`ConfigurationError` for anything unknown."""
    try:
        parts = urlsplit(url.strip())
        scheme, host, port = parts.scheme, parts.hostname, parts.port
        path = parts.path.strip("/")
        if scheme == "memory":
            return None
        if scheme in ("redis", "rediss") and host and (not path or path.isdigit()):
            username = unquote(parts.username) if parts.username else None
            password = unquote(parts.password) if parts.password else None
            return CacheUrl(scheme, host, port or 6379, int(path or 0), username, password)
        if scheme == "memcached" and host and not path:
            return CacheUrl(scheme, host, port or 11211)
    except ValueError:
        pass
    # The URL may carry a password: name the variable, never echo the value.
    raise ConfigurationError(
        Reason.CONFIGURATION_ERROR,
        "IDP_CACHE_URL: use memory://, redis://host:port/db, rediss://... or memcached://host:port",
    )


def open_shared_tier(url: str, *, clock: Clock = time.time) -> SharedTier | None:
    """The shared tier ``IDP_CACHE_URL`` asks for, importing its client library only now; no I/O."""
    parsed = parse_cache_url(url)
    if parsed is None:
        return None
    if parsed.scheme == "memcached":
        return _memcached(parsed, clock)
    return _redis(parsed, clock)


def _redis(url: CacheUrl, clock: Clock) -> SharedTier:
    try:
        redis_cache = redis_backend()
        from redis.exceptions import RedisError
    except ImportError:
        raise ConfigurationError(
            Reason.CONFIGURATION_ERROR,
            "IDP_CACHE_URL: redis:// needs the redis extra (pip install idp-authorizer[redis])",
        ) from None

    def connect() -> BaseCache:
        return redis_cache(
            serializer=StringSerializer(),
            endpoint=url.host,
            port=url.port,
            db=url.db,
            password=url.password,
            ssl=url.scheme == "rediss",
            timeout=TIMEOUT_SECONDS,
            create_connection_timeout=TIMEOUT_SECONDS,
            connection_pool_kwargs={"socket_timeout": TIMEOUT_SECONDS, "username": url.username},
        )

    return SharedTier(connect, (RedisError,), clock=clock)


def _memcached(url: CacheUrl, clock: Clock) -> SharedTier:
    try:
        memcached_cache = memcached_backend()
        from aiomcache.exceptions import ClientException
    except ImportError:
        raise ConfigurationError(
            Reason.CONFIGURATION_ERROR,
            "IDP_CACHE_URL: memcached:// needs the memcached extra (pip install idp-authorizer[memcached])",
        ) from None

    def connect() -> BaseCache:
        return memcached_cache(serializer=StringSerializer(), endpoint=url.host, port=url.port, timeout=TIMEOUT_SECONDS)

    return SharedTier(connect, (ClientException,), clock=clock)
