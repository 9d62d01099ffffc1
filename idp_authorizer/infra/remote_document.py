"""An IdP document kept parsed, with a last good copy and back-off: key sets and discovery documents.

- Fresh for ``max_age`` seconds after it was fetched (wall clock, checked on every read).
- Single-flight: concurrent refreshes share one fetch.
- Last good copy: a failed refresh keeps the old value, usable for ``stale_seconds`` past its maximum
  age; a bad document (``parse`` raises :class:`UpstreamUnavailable`) never replaces a good one.
- Back-off: after a failed fetch, refreshes fail fast (``idp_backoff``) for ``retry_after`` seconds
  instead of queueing on a dead IdP; the next one after that asks again. A fetch made while
  :func:`prefetching` (at initialization, off the request path) arms none when it fails: the first
  request then asks the IdP itself, exactly as if nothing had been prefetched.
- Shared tier: a copy another instance fetched is taken instead of a fetch when it is newer than ours,
  still fresh, parses, and passes the caller's ``accept`` check.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from idp_authorizer.core.clock import Clock
from idp_authorizer.core.errors import Reason, UpstreamUnavailable
from idp_authorizer.infra.http import HttpClient
from idp_authorizer.infra.single_flight import SingleFlight

if TYPE_CHECKING:
    from idp_authorizer.infra.shared_cache import SharedDocuments

T = TypeVar("T")
logger = logging.getLogger("idp_authorizer.remote_document")
_prefetching: ContextVar[bool] = ContextVar("idp_authorizer_prefetching", default=False)


@contextmanager
def prefetching() -> Iterator[None]:
    """Within it (and in the tasks started within it), a failed fetch arms no back-off."""
    token = _prefetching.set(True)
    try:
        yield
    finally:
        _prefetching.reset(token)


@dataclass(frozen=True, slots=True)
class Freshness:
    """How long a document is trusted, served stale, and how soon a failed fetch is retried."""

    max_age: float = 3600.0
    stale_seconds: float = 6 * 3600.0
    retry_after: float = 5.0


class RemoteDocument(Generic[T]):
    """One document at ``url``, parsed by ``parse`` into the value callers use."""

    def __init__(
        self,
        http: HttpClient,
        url: str | Callable[[], Awaitable[str]],
        parse: Callable[[dict[str, Any]], T],
        freshness: Freshness,
        clock: Clock = time.time,
        *,
        what: str,
        shared: SharedDocuments | None = None,
    ) -> None:
        self._http = http
        self._url = url
        self._parse = parse
        self._freshness = freshness
        self._clock = clock
        self._what = what
        self._shared = shared
        self._flight: SingleFlight[T] = SingleFlight()
        self.value: T | None = None
        self.fetched_at = -float("inf")
        self._failed_at = -float("inf")
        self.fetches = 0
        """Fetches from the IdP attempted, for tests and metrics."""

    def fresh(self) -> T | None:
        """The value if it is within its maximum age (no I/O)."""
        return self.value if self._clock() - self.fetched_at < self._freshness.max_age else None

    def expires_within(self, seconds: float) -> bool:
        """Whether the value is missing or leaves its maximum age within ``seconds`` (a scheduled refresh asks)."""
        return self._clock() - self.fetched_at >= self._freshness.max_age - seconds

    def last_good(self) -> T | None:
        """The value if it is within its maximum age plus the stale window: what an outage may still serve."""
        limit = self._freshness.max_age + self._freshness.stale_seconds
        return self.value if self._clock() - self.fetched_at < limit else None

    async def refresh(self, accept: Callable[[T], bool] = lambda _: True) -> T:
        """Fetch once for every concurrent caller; ``accept`` decides whether a shared-tier copy will do."""
        if not self._flight.busy() and self._clock() - self._failed_at < self._freshness.retry_after:
            raise UpstreamUnavailable(Reason.IDP_BACKOFF, f"the {self._what} fetch failed moments ago")
        return await self._flight.run(None, lambda: self._fetch(accept))

    async def _fetch(self, accept: Callable[[T], bool]) -> T:
        try:
            url = self._url if isinstance(self._url, str) else await self._url()
            shared = await self._from_shared(url, accept)
            if shared is not None:
                return shared
            self.fetches += 1
            body = (await self._http.get_json(url)).body
            value = self._parse(body)
        except UpstreamUnavailable as exc:
            if not _prefetching.get():
                self._failed_at = self._clock()
            logger.warning("%s fetch failed: %s (%s)", self._what, exc.code, exc.description)
            raise
        self._adopt(value, self._clock())
        if self._shared is not None:
            await self._shared.save(url, body, self.fetched_at, self._freshness.max_age)
        return value

    async def _from_shared(self, url: str, accept: Callable[[T], bool]) -> T | None:
        found = await self._shared.load(url) if self._shared is not None else None
        if found is None:
            return None
        document, fetched_at = found
        if fetched_at <= self.fetched_at or self._clock() - fetched_at >= self._freshness.max_age:
            return None
        try:
            value = self._parse(document)
        except UpstreamUnavailable:
            return None
        if not accept(value):
            return None
        self._adopt(value, fetched_at)
        return value

    async def close(self) -> None:
        """Close the shared tier's connection, if there is one (the HTTP client is closed by its owner)."""
        if self._shared is not None:
            await self._shared.close()

    def _adopt(self, value: T, fetched_at: float) -> None:
        self.value = value
        self.fetched_at = fetched_at
        self._failed_at = -float("inf")
