"""Route rules from a central source (``IDP_ROUTES_URL``), reloaded every few seconds without a redeploy.

The rules document is a :class:`~idp_authorizer.infra.remote_document.RemoteDocument` (one fetch at a
time, bounded by the HTTP client's timeout and size limit; a bad document never replaces a good one),
served by an ``https://`` endpoint or the AWS AppConfig Lambda extension on ``http://localhost:2772``.

- Off the hot path: :meth:`RouteSource.due` is a clock comparison. The first request after the interval
  starts the reload; the next one is scheduled at once, so concurrent requests keep the rules they have.
- A failed or invalid reload keeps the last good rules (the document logs one WARNING naming the problem);
  before the first good load, :attr:`RouteSource.rules` is ``None`` and the authorizer fails closed (500).
  Until then a load is retried every ``retry_after`` seconds, afterwards every ``reload_seconds``.
- ``on_change`` is called with new rules only when they differ from the current ones, so that every
  response and policy rendered from the old rules is dropped at once (:meth:`DecisionPath.adopt`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from idp_authorizer.core.clock import Clock
from idp_authorizer.core.errors import UpstreamUnavailable
from idp_authorizer.infra.http import HttpClient
from idp_authorizer.infra.remote_document import Freshness, RemoteDocument

T = TypeVar("T")
APPCONFIG_EXTENSION = "http://localhost:2772/"
"""Where the AWS AppConfig Lambda extension answers: plain HTTP on loopback, allowed for it alone."""


class RouteSource(Generic[T]):
    """The rules at ``url``, parsed by ``parse`` (which raises :class:`UpstreamUnavailable` for bad rules)."""

    def __init__(
        self,
        http: HttpClient,
        url: str,
        parse: Callable[[dict[str, Any]], T],
        on_change: Callable[[T], None],
        *,
        reload_seconds: float = 60.0,
        retry_after: float = 5.0,
        clock: Clock = time.time,
    ) -> None:
        # Never stale: the last good rules serve however long the source is down (they name routes, not keys).
        freshness = Freshness(max_age=reload_seconds, stale_seconds=float("inf"), retry_after=0.0)
        self.document = RemoteDocument(http, url, parse, freshness, clock, what="route rules")
        self.url = url
        self._on_change = on_change
        self._reload_seconds = reload_seconds
        self._retry_after = retry_after
        self._clock = clock
        self._next = -float("inf")
        self.rules: T | None = None
        """The rules in force; ``None`` before the first good load."""
        self.problem: UpstreamUnavailable | None = None
        """Why the last reload failed (``None`` when it succeeded), for the doctor and the scheduled refresh."""

    def due(self) -> bool:
        """Whether a request should start a reload now (no I/O)."""
        return self._clock() >= self._next

    async def reload(self) -> T | None:
        """Fetch the rules once; adopt them if they parse and differ. Returns the rules in force. Never raises."""
        self._schedule()
        try:
            rules = await self.document.refresh()
        except UpstreamUnavailable as exc:
            self.problem = exc
        else:
            self.problem = None
            if rules != self.rules:
                self.rules = rules
                self._on_change(rules)
        self._schedule()
        return self.rules

    def _schedule(self) -> None:
        wait = self._reload_seconds if self.rules is not None else self._retry_after
        self._next = self._clock() + wait
