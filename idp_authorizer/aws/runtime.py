"""The Lambda adapter's runtime: the container's one event loop and the two entry points.

Both entry points drive the same :class:`~idp_authorizer.core.decision.DecisionPath`: :meth:`Authorizer.handle`
(Lambda) runs what the path asks for on the container's loop, created once and kept while warm;
:meth:`Authorizer.authorize` awaits it on the caller's loop. A warm request never enters the loop.
:meth:`Authorizer.prefetch` and :meth:`Authorizer.close` serve initialization
(:mod:`idp_authorizer.aws.initialization`): fetch every provider's documents ahead, then let go of every
connection and of the loop itself, which the next request that needs the IdP creates anew.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from idp_authorizer.aws.router import ProviderRouter
from idp_authorizer.core.binding import SenderCheck
from idp_authorizer.core.clock import Clock
from idp_authorizer.core.decision import DecisionPath
from idp_authorizer.core.errors import AuthorizerError, Reason
from idp_authorizer.core.events import TokenSource
from idp_authorizer.core.outcome import Responder
from idp_authorizer.infra.cache import BoundedMemoryCache
from idp_authorizer.infra.log import DecisionLog
from idp_authorizer.infra.remote_document import prefetching

T = TypeVar("T")

if TYPE_CHECKING:
    from idp_authorizer.core.provider import Provider
    from idp_authorizer.infra.metrics import Metrics
    from idp_authorizer.infra.remote_document import RemoteDocument
    from idp_authorizer.infra.route_source import RouteSource


class Authorizer:
    """Turns API Gateway authorizer events into responses. Build it once per container."""

    def __init__(
        self,
        router: ProviderRouter,
        responder: Responder,
        *,
        sources: Sequence[TokenSource],
        cache: BoundedMemoryCache,
        negative_seconds: float = 10.0,
        max_token_bytes: int = 10 * 1024,
        decision_log: DecisionLog | None = None,
        metrics: Metrics | None = None,
        sender: SenderCheck | None = None,
        require_sender_constrained: bool = False,
        clock: Clock = time.time,
    ) -> None:
        self.router = router
        self.responder = responder
        self.cache = cache
        self.metrics = metrics
        self._log = decision_log or DecisionLog()
        self.path = DecisionPath(
            router,
            responder,
            sources=sources,
            cache=cache,
            log=self._log,
            negative_seconds=negative_seconds,
            max_token_bytes=max_token_bytes,
            metrics=metrics,
            sender=sender,
            require_sender_constrained=require_sender_constrained,
            clock=clock,
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self.documents: tuple[RemoteDocument[Any], ...] = ()
        """The discovery documents and key sets a scheduled refresh keeps fresh (:mod:`.scheduled`)."""
        self.routes: RouteSource[Responder] | None = None
        """``IDP_ROUTES_URL``: where the rules are reloaded from (the first request after the interval does it)."""

    def handle(self, event: object) -> dict[str, Any]:
        """Synchronous entry (Lambda). Enters the event loop only when the IdP must be asked."""
        if self.routes is not None and self.routes.due():
            self._run(self.routes.reload())
        flow = self.path.flow(event)
        try:
            pending = next(flow)
            while True:
                pending = flow.send(self._run(pending))
        except StopIteration as done:
            response: dict[str, Any] = done.value
            return response

    async def authorize(self, event: object) -> dict[str, Any]:
        """Asynchronous entry for async callers; the same decisions as :meth:`handle`."""
        if self.routes is not None and self.routes.due():
            await self.routes.reload()
        flow = self.path.flow(event)
        try:
            pending = next(flow)
            while True:
                pending = flow.send(await pending)
        except StopIteration as done:
            response: dict[str, Any] = done.value
            return response

    def prefetch(self, seconds: float) -> dict[str, str | None]:
        """Every provider's :meth:`~idp_authorizer.core.provider.Provider.prefetch`, concurrently, within
        ``seconds``: the error code of each provider by name (``None`` when it succeeded). A failure arms
        no back-off, so a provider that failed here is fetched by its first request as usual."""
        return self._run(_prefetch(self.router.providers, seconds))

    def close(self) -> None:
        """Close every HTTP session and shared-cache connection, then the event loop (before a snapshot,
        and for tools and tests); the next request that needs the IdP opens new ones."""
        loop, self._loop = self._loop, None
        if loop is None or loop.is_closed():
            return
        for provider in self.router.providers:
            loop.run_until_complete(provider.close())
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()

    def _run(self, pending: Awaitable[T]) -> T:
        """Run on the container's one event loop (created once, never closed while warm)."""
        if self._loop is None or self._loop.is_closed():
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(pending)


async def _prefetch(providers: Sequence[Provider], seconds: float) -> dict[str, str | None]:
    async def one(provider: Provider) -> str | None:
        try:
            await provider.prefetch()
        except AuthorizerError as exc:  # an outage, or a discovery document that names a bad URL
            return exc.code
        return None

    with prefetching():
        tasks = {provider.name: asyncio.ensure_future(one(provider)) for provider in providers}
    done, pending = await asyncio.wait(tasks.values(), timeout=seconds)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return {name: task.result() if task in done else Reason.IDP_TIMEOUT for name, task in tasks.items()}
