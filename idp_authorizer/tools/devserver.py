"""An aiohttp application served from a background thread on loopback: the dev IdP and test servers.

The authorizer runs its own event loop on the calling thread, so a local IdP it talks to must run
on another one. Never used by the Lambda handler.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from typing import Any

from aiohttp import web


class BackgroundServer:
    """Serves one application on ``host:port`` (``0``: a free port) until :meth:`stop`."""

    def __init__(self, name: str, host: str = "127.0.0.1", port: int = 0) -> None:
        self.name = name
        self.host = host
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    def start(self, app: web.Application, tls: ssl.SSLContext | None = None) -> int:
        """Serve ``app`` (over TLS with ``tls``); returns the port once the socket listens."""
        ready = threading.Event()
        loop = self._loop = asyncio.new_event_loop()

        async def serve() -> None:
            self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
            await self._runner.setup()
            site = web.TCPSite(self._runner, self.host, self.port, ssl_context=tls)
            await site.start()
            # The only way to learn the port the OS chose for port 0.
            server: Any = site._server
            self.port = server.sockets[0].getsockname()[1]
            ready.set()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(serve())
            loop.run_forever()

        self._thread = threading.Thread(target=run, name=self.name, daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError(f"{self.name} did not start")
        return self.port

    def stop(self) -> None:
        """Stop serving and wait for the thread (bounded)."""
        if self._loop is None or self._thread is None:
            return
        loop = self._loop

        async def shutdown() -> None:
            if self._runner is not None:
                await self._runner.cleanup()
            loop.stop()

        asyncio.run_coroutine_threadsafe(shutdown(), loop)
        self._thread.join(10)
        loop.close()
        self._loop = self._thread = self._runner = None
