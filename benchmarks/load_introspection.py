"""A counting RFC 7662 introspection endpoint on 127.0.0.1 for the load test (``POST /introspect``).

https://www.rfc-editor.org/rfc/rfc7662: the client authenticates with ``client_secret_basic`` (RFC 6749
section 2.3.1, id and secret form-urlencoded before base64); a token this server issued and that has not
expired gets ``{"active": true, ...}``, every other token ``{"active": false}``. ``calls`` counts the
introspection requests, the number the load test compares with the distinct opaque tokens it sent.
"""

from __future__ import annotations

import base64
import secrets
import time
from typing import Any
from urllib.parse import quote_plus

from aiohttp import web

from idp_authorizer.tools.devserver import BackgroundServer


class IntrospectionServer:
    """A token store and an aiohttp app on a background thread, for one client."""

    def __init__(self, client_id: str, client_secret: str) -> None:
        raw = f"{quote_plus(client_id)}:{quote_plus(client_secret)}".encode()
        self._authorization = "Basic " + base64.b64encode(raw).decode()
        self.tokens: dict[str, dict[str, Any]] = {}
        self.calls = 0
        self.port = 0
        self._server: BackgroundServer | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.issuer}/introspect"

    def issue(self, *, scope: str = "read", ttl: float = 300, **fields: Any) -> str:
        """A new opaque token, active for ``ttl`` seconds, whose answer carries ``fields``."""
        token = secrets.token_urlsafe(32)
        now = int(time.time())
        self.tokens[token] = {"client_id": "client-app", "iat": now, "exp": now + ttl, "iss": self.issuer,
                              "token_type": "Bearer", "scope": scope, **fields}  # fmt: skip
        return token

    def answer(self, token: str) -> dict[str, Any]:
        fields = self.tokens.get(token)
        if fields is None or fields["exp"] <= time.time():
            return {"active": False}
        return {"active": True, **fields}

    async def _introspect(self, request: web.Request) -> web.Response:
        self.calls += 1
        if not secrets.compare_digest(request.headers.get("Authorization", ""), self._authorization):
            return web.json_response({"error": "invalid_client"}, status=401, headers={"WWW-Authenticate": "Basic"})
        token = (await request.post()).get("token")
        if not isinstance(token, str) or not token:
            return web.json_response({"error": "invalid_request"}, status=400)
        return web.json_response(self.answer(token))

    def start(self) -> IntrospectionServer:
        app = web.Application()
        app.router.add_post("/introspect", self._introspect)
        self._server = BackgroundServer("load-introspection")
        self.port = self._server.start(app)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
