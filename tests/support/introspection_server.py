"""An RFC 7662 introspection endpoint on 127.0.0.1 for the tests, strict about client authentication.

- ``POST /introspect``: form body (``application/x-www-form-urlencoded``) with ``token`` and optionally
  ``token_type_hint``; the client authenticates exactly one way (RFC 6749 section 2.3.1):
  ``client_secret_basic``, an ``Authorization: Basic`` header whose id and secret were form-urlencoded
  before base64, or ``client_secret_post``, ``client_id`` + ``client_secret`` in the body. Anything else
  gets 401 ``invalid_client`` (RFC 7662 section 2.3), or 400 when ``client_error_status`` says so (RFC 6749
  section 5.2 lets a server answer 400 ``invalid_client`` when the client did not use the Authorization header,
  and some do for every method). Known, unrevoked, unexpired tokens get
  ``{"active": true, ...fields}``, every other token ``{"active": false}``.
- ``GET /.well-known/openid-configuration``: discovery naming the introspection endpoint.

Counts every introspection request (``calls``, ``calls_by_token``), remembers the hints sent and why
authentication failed. ``fault`` (a :mod:`fault_server` fault) replaces the introspection answer;
``delay`` holds every answer so concurrent requests overlap.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import secrets
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from aiohttp import web
from fault_server import Fault

from idp_authorizer.tools.devserver import BackgroundServer


@dataclass(frozen=True)
class Client:
    client_id: str
    client_secret: str
    method: str = "client_secret_basic"


BASIC = Client("rs:api gateway", "s3cr%t:with+special/chars= &?", "client_secret_basic")
POST = Client("rs-post", "post-secret-0123456789", "client_secret_post")


class IntrospectionServer:
    """A token store and an aiohttp app served on a background thread (like :class:`DevIdp`)."""

    def __init__(self, clients: tuple[Client, ...] = (BASIC, POST), issuer_suffix: str = "") -> None:
        self.clients = {client.client_id: client for client in clients}
        self.tokens: dict[str, dict[str, Any]] = {}
        self.revoked: set[str] = set()
        self.calls = 0
        self.calls_by_token: Counter[str] = Counter()
        self.discovery_hits = 0
        self.hints: list[str | None] = []
        self.auth_failures: list[str] = []
        self.fault: Fault | None = None
        self.client_error_status = 401
        """Status of the ``invalid_client`` answer to a failed client authentication (401 or 400)."""
        self.delay = 0.0
        self.port = 0
        self._suffix = issuer_suffix
        self._server: BackgroundServer | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}{self._suffix}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/introspect"

    # -- tokens -------------------------------------------------------------------------------

    def env(self, client: Client = BASIC, **extra: str) -> dict[str, str]:
        """The ``IDP_*`` variables of an introspection provider for this server, plus ``extra``."""
        return {
            "IDP_PROVIDER": "introspection",
            "IDP_INTROSPECTION_URL": self.url,
            "IDP_CLIENT_ID": client.client_id,
            "IDP_CLIENT_SECRET": client.client_secret,
            "IDP_CLIENT_AUTH": client.method,
            "IDP_ALLOW_LOOPBACK_HTTP": "true",
            **extra,
        }

    def issue(self, *, scope: str | None = "read", ttl: float | None = 300, **fields: Any) -> str:
        """A new opaque token; its introspection answer is the panva oidc-provider shape plus ``fields``.

        Pass ``None`` for a field to leave it out (``exp`` via ``ttl=None``).
        """
        token = secrets.token_urlsafe(32)
        now = int(time.time())
        answer: dict[str, Any] = {
            "client_id": "client-app",
            "iat": now,
            "iss": self.issuer,
            "aud": "urn:api",
            "token_type": "Bearer",
        }
        if ttl is not None:
            answer["exp"] = now + ttl
        if scope is not None:
            answer["scope"] = scope
        answer.update(fields)
        self.register(token, **answer)
        return token

    def register(self, token: str, **answer: Any) -> None:
        """Make the server know ``token`` (any string, JWTs too) with this introspection answer."""
        self.tokens[token] = {name: value for name, value in answer.items() if value is not None}

    def revoke(self, token: str) -> None:
        self.revoked.add(token)

    def answer(self, token: str) -> dict[str, Any]:
        fields = self.tokens.get(token)
        if fields is None or token in self.revoked:
            return {"active": False}
        exp = fields.get("exp")
        if isinstance(exp, int | float) and exp <= time.time():
            return {"active": False}
        return {"active": True, **fields}

    # -- HTTP ---------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/introspect", self._introspect)
        app.router.add_get("/.well-known/openid-configuration", self._discovery)
        return app

    async def _discovery(self, request: web.Request) -> web.Response:
        self.discovery_hits += 1
        return web.json_response({"issuer": self.issuer, "introspection_endpoint": self.url})

    async def _introspect(self, request: web.Request) -> web.StreamResponse:
        self.calls += 1
        if request.content_type != "application/x-www-form-urlencoded":
            return web.json_response({"error": "invalid_request"}, status=400)
        form = {name: str(value) for name, value in (await request.post()).items()}
        token = form.get("token")
        if token is not None:
            self.calls_by_token[token] += 1
        self.hints.append(form.get("token_type_hint"))
        failure = self._authenticate(request, form)
        if failure is not None:
            self.auth_failures.append(failure)
            return web.json_response(
                {"error": "invalid_client"}, status=self.client_error_status, headers={"WWW-Authenticate": "Basic"}
            )
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fault is not None:
            return await self.fault(request)
        if not token:
            return web.json_response({"error": "invalid_request"}, status=400)
        return web.json_response(self.answer(token))

    def _authenticate(self, request: web.Request, form: dict[str, str]) -> str | None:
        """``None`` if the client authenticated exactly as registered, else why not."""
        header = request.headers.get("Authorization")
        in_body = "client_secret" in form
        if header is not None and in_body:
            return "more than one authentication method"  # RFC 6749 section 2.3
        if header is not None:
            scheme, _, encoded = header.partition(" ")
            if scheme.lower() != "basic":
                return "not Basic"
            try:
                decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return "not base64"
            raw_id, sep, raw_secret = decoded.partition(":")
            if not sep:
                return "no colon"
            # RFC 6749 section 2.3.1: each part was application/x-www-form-urlencoded before base64.
            client_id, secret, method = unquote_plus(raw_id), unquote_plus(raw_secret), "client_secret_basic"
        elif in_body:
            client_id, secret, method = form.get("client_id", ""), form["client_secret"], "client_secret_post"
        else:
            return "no client authentication"
        client = self.clients.get(client_id)
        if client is None or not secrets.compare_digest(client.client_secret.encode(), secret.encode()):
            return "wrong id or secret"
        if client.method != method:
            return f"{method} used by a {client.method} client"
        return None

    def start(self) -> IntrospectionServer:
        self._server = BackgroundServer("introspection-server")
        self.port = self._server.start(self.app())
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> IntrospectionServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
