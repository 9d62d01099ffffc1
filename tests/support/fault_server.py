"""Hostile and failing identity providers on 127.0.0.1, for the hardening tests.

:class:`FaultServer` is a real OIDC issuer (discovery + JWK Set, real keys, a token mint through
:class:`~idp_authorizer.tools.devidp.DevIdp`) whose every path can be told to misbehave: 5xx, 429,
redirects to another host, invalid or wrong-shape JSON, oversized or compressed-bomb bodies,
stalls before the headers or in the middle of the body, dropped connections, key sets with
unusable keys. :func:`refused_url` and :func:`blackhole_url` give addresses where the connection
itself fails (refused; accepted by nobody so the connect times out). :class:`Canary` is a
listening port that counts every TCP connection made to it: proof that nothing was fetched.

What API Gateway would see of an answer is named by :mod:`outcomes`.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

from aiohttp import web

from idp_authorizer.tools.devidp import DevIdp
from idp_authorizer.tools.devserver import BackgroundServer

Fault = Callable[[web.Request], Awaitable[web.StreamResponse]]

DISCOVERY = "/.well-known/openid-configuration"
JWKS = "/jwks"
INTROSPECT = "/introspect"


# -- a hostile IdP ------------------------------------------------------------------------------


class FaultServer:
    """An OIDC issuer on 127.0.0.1 whose paths misbehave on request; ``hits`` counts requests per path."""

    def __init__(self, audience: str = "demo-api") -> None:
        self.idp = DevIdp(audience=audience)
        """Keys and the token mint; its port is set to this server's so ``iss`` matches."""
        self.hits: Counter[str] = Counter()
        self.faults: dict[str, Fault] = {}
        self.active: dict[str, dict[str, Any]] = {}
        """Opaque tokens the introspection endpoint calls active, with their introspection claims."""
        self.authorizations: list[str | None] = []
        """The Authorization header of every introspection request (client authentication)."""
        self._server: BackgroundServer | None = None

    @property
    def issuer(self) -> str:
        return self.idp.issuer

    @property
    def jwks_url(self) -> str:
        return self.issuer + JWKS

    def mint(self, **kwargs: Any) -> str:
        return self.idp.mint(**kwargs)

    @property
    def introspection_url(self) -> str:
        return self.issuer + INTROSPECT

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "jwks_uri": self.jwks_url,
            "introspection_endpoint": self.introspection_url,
            "id_token_signing_alg_values_supported": ["RS256"],
        }

    def set(self, path: str, fault: Fault) -> None:
        """Make ``path`` misbehave (``JWKS`` or ``DISCOVERY``) until :meth:`heal`."""
        self.faults[path] = fault

    def heal(self) -> None:
        self.faults.clear()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.hits[request.path] += 1
        fault = self.faults.get(request.path)
        if fault is not None:
            return await fault(request)
        if request.path == DISCOVERY:
            return web.json_response(self.discovery())
        if request.path == JWKS:
            return web.json_response(self.idp.jwks())
        if request.path == INTROSPECT and request.method == "POST":
            return await self._introspect(request)
        return web.json_response({"error": "not_found"}, status=404)

    async def _introspect(self, request: web.Request) -> web.StreamResponse:
        """RFC 7662: ``active`` with the registered claims for a known token, ``{"active": false}`` otherwise."""
        self.authorizations.append(request.headers.get("Authorization"))
        token = (await request.post()).get("token")
        claims = self.active.get(token) if isinstance(token, str) else None
        return web.json_response({"active": True, **claims} if claims is not None else {"active": False})

    def start(self) -> FaultServer:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._server = BackgroundServer("fault-idp")
        self.idp.port = self._server.start(app)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- the faults ---------------------------------------------------------------------------------


def status(code: int, body: bytes = b'{"error":"server_error"}') -> Fault:
    async def fault(request: web.Request) -> web.StreamResponse:
        return web.Response(status=code, body=body, content_type="application/json", headers={"Retry-After": "1"})

    return fault


def redirect(location: str, code: int = 302) -> Fault:
    async def fault(request: web.Request) -> web.StreamResponse:
        return web.Response(status=code, headers={"Location": location})

    return fault


def raw(body: bytes, content_type: str = "application/json", headers: dict[str, str] | None = None) -> Fault:
    async def fault(request: web.Request) -> web.StreamResponse:
        return web.Response(body=body, headers={"Content-Type": content_type, **(headers or {})})

    return fault


def json_body(value: object) -> Fault:
    return raw(json.dumps(value).encode())


def hang(seconds: float = 30.0) -> Fault:
    """Accept the request, then say nothing (a timeout before the headers)."""

    async def fault(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(seconds)
        return web.Response(body=b"{}")

    return fault


def slow_body(seconds: float = 30.0) -> Fault:
    """Send the headers and the start of a JSON body, then stall (a timeout during the body)."""

    async def fault(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json", "Content-Length": "100000"})
        await response.prepare(request)
        await response.write(b'{"keys": [')
        await asyncio.sleep(seconds)
        return response

    return fault


def drop() -> Fault:
    """Close the connection without an answer."""

    async def fault(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.close()
        raise asyncio.CancelledError

    return fault


def oversized(size: int, *, chunked: bool) -> Fault:
    """A JSON body of ``size`` bytes, with a Content-Length or streamed in chunks without one."""

    async def fault(request: web.Request) -> web.StreamResponse:
        headers = {"Content-Type": "application/json"}
        if not chunked:
            headers["Content-Length"] = str(size)
        response = web.StreamResponse(headers=headers)
        if chunked:
            response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(b'{"keys":[],"pad":"')
        sent, block = 18, b"A" * 65536
        while sent < size - 2:
            part = block[: size - 2 - sent]
            await response.write(part)
            sent += len(part)
        await response.write(b'"}')
        return response

    return fault


def gzip_bomb(size: int) -> Fault:
    """A small gzip body that inflates to ``size`` bytes of JSON."""
    body = gzip.compress(b'{"keys":[],"pad":"' + b"0" * size + b'"}', compresslevel=9)

    async def fault(request: web.Request) -> web.StreamResponse:
        return web.Response(body=body, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})

    return fault


# -- addresses where the connection itself fails ------------------------------------------------


def refused_url(path: str = JWKS) -> str:
    """A loopback URL on a port nobody listens on: the connection is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


@contextmanager
def blackhole_url(path: str = JWKS) -> Iterator[str]:
    """A loopback URL whose listen backlog is full and never accepted: the connect times out."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        with suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    try:
        yield f"http://127.0.0.1:{port}{path}"
    finally:
        for sock in (*fillers, listener):
            sock.close()


class Canary:
    """A listening port on 127.0.0.1 that counts every connection made to it (and answers nothing)."""

    def __init__(self) -> None:
        self.connections = 0
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._sock.settimeout(0.05)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="canary", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            conn.close()

    def __enter__(self) -> Canary:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()
