"""Single-flight: concurrent callers that need the same thing share one call to the IdP.

Used for key-set fetches, discovery documents and introspection answers. The shared call is shielded
(one caller giving up never cancels it for the others), forgotten once it settles (the next caller
starts a fresh one) and bound to the loop it runs on (a container whose loop was replaced never
awaits a future of the old one).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Hashable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class SingleFlight(Generic[T]):
    """At most one call in flight per key; every caller of that key awaits its result."""

    def __init__(self) -> None:
        self._inflight: dict[Hashable, asyncio.Future[T]] = {}

    def busy(self, key: Hashable = None) -> bool:
        """Whether a call for ``key`` is in flight on the running loop."""
        future = self._inflight.get(key)
        return future is not None and not future.done() and future.get_loop() is asyncio.get_running_loop()

    async def run(self, key: Hashable, call: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """The result of the call in flight for ``key``, or of ``call()`` started now."""
        future = self._inflight.get(key)
        if future is None or future.done() or future.get_loop() is not asyncio.get_running_loop():
            future = asyncio.ensure_future(call())
            self._inflight[key] = future
            future.add_done_callback(lambda done: self._settled(key, done))
        return await asyncio.shield(future)

    def _settled(self, key: Hashable, future: asyncio.Future[T]) -> None:
        if self._inflight.get(key) is future:
            del self._inflight[key]
        if not future.cancelled():
            future.exception()  # retrieved here, so an unawaited failure is not reported as lost
