"""A local identity provider for development, the demo and the tests. Never for production.

Serves OIDC discovery and a JWK Set on 127.0.0.1 and mints signed access tokens (RFC 9068 shape)
with real keys (RS256/PS256 on one RSA-2048 key, ES256, EdDSA), so the authorizer can be seen
working with no cloud account. It counts requests per path and the connections they came on, so
tests can assert cache behaviour; ``latency`` delays each discovery and key-set answer, to stand for
the round trip to a remote IdP (the benchmarks).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from typing import Any

from aiohttp import web
from joserfc import jws
from joserfc.jwk import ECKey, Key, OKPKey, RSAKey

from idp_authorizer.tools.devserver import BackgroundServer

ALG_KEY = {"RS256": "rsa", "PS256": "rsa", "ES256": "ec", "EdDSA": "okp"}
_CNF_FIELDS = {"dpop_jkt": "jkt", "x5t_s256": "x5t#S256"}
"""``/token`` form fields that bind the token (RFC 9449 section 6.1, RFC 8705 section 3.1)."""


class DevIdp:
    """Keys, a token mint and an aiohttp app; :meth:`start` runs it on a background thread."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, audience: str = "demo-api", *, latency: float = 0.0
    ) -> None:
        self.host = host
        self.port = port
        self.audience = audience
        self.latency = latency
        self.hits: Counter[str] = Counter()
        self.connections: set[object] = set()
        """The client end (host, port) of every connection a request came on."""
        self.keys: dict[str, Key] = {}
        self.retired: dict[str, Key] = {}
        self.rotate_keys()
        self._server: BackgroundServer | None = None

    @property
    def issuer(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/.well-known/jwks.json"

    # -- keys and tokens ----------------------------------------------------------------------

    def rotate_keys(self) -> None:
        """New keys for every algorithm; the old ones leave the published set."""
        tag = uuid.uuid4().hex[:8]
        self.retired.update(self.keys)
        self.keys = {
            "rsa": RSAKey.generate_key(2048, parameters={"kid": f"rsa-{tag}", "use": "sig"}, private=True),
            "ec": ECKey.generate_key("P-256", parameters={"kid": f"ec-{tag}", "use": "sig"}, private=True),
            "okp": OKPKey.generate_key("Ed25519", parameters={"kid": f"okp-{tag}", "use": "sig"}, private=True),
        }

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.as_dict(private=False) for key in self.keys.values()]}

    def mint(
        self,
        *,
        alg: str = "RS256",
        ttl: float = 300,
        scope: str | None = "read",
        header: dict[str, Any] | None = None,
        key: Key | None = None,
        **claims: Any,
    ) -> str:
        """A signed access token; ``claims`` and ``header`` override the defaults (``None`` drops one)."""
        now = int(time.time())
        body: dict[str, Any] = {
            "iss": self.issuer,
            "sub": "user-123",
            "aud": self.audience,
            "iat": now,
            "exp": now + ttl,
            "client_id": "demo-client",
            "jti": uuid.uuid4().hex,
        }
        if scope is not None:
            body["scope"] = scope
        body.update(claims)
        body = {name: value for name, value in body.items() if value is not None}
        signing_key = key or self.keys[ALG_KEY[alg]]
        protected = {"alg": alg, "typ": "at+jwt", "kid": signing_key.kid, **(header or {})}
        protected = {name: value for name, value in protected.items() if value is not None}
        # jws, not jwt.encode: that adds "typ": "JWT" to a header meant to have none (Cognito sends none).
        payload = json.dumps(body, separators=(",", ":")).encode()
        return jws.serialize_compact(protected, payload, signing_key, algorithms=[protected["alg"]])

    def mint_preset(self, preset: str, *, alg: str = "RS256", **claims: Any) -> str:
        """A token shaped as the IdP ``preset`` issues it (:data:`~idp_authorizer.tools.presets.PRESETS`);
        ``claims`` override its claims (``None`` drops one)."""
        from idp_authorizer.tools.presets import PRESETS

        shape = PRESETS[preset]
        return self.mint(alg=alg, header=shape.header, **{**shape.claims(), **claims})

    # -- HTTP ---------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", self._discovery)
        app.router.add_get("/.well-known/jwks.json", self._jwks)
        app.router.add_post("/token", self._token)
        app.router.add_get("/hits", self._hits)
        return app

    async def _hits(self, _: web.Request) -> web.Response:
        """The request counts by path (not counted itself), for a benchmark that runs the IdP apart."""
        return web.json_response(dict(self.hits))

    async def _seen(self, request: web.Request) -> None:
        self.hits[request.path] += 1
        if request.transport is not None:
            self.connections.add(request.transport.get_extra_info("peername"))
        if self.latency:
            await asyncio.sleep(self.latency)

    async def _discovery(self, request: web.Request) -> web.Response:
        await self._seen(request)
        return web.json_response(
            {
                "issuer": self.issuer,
                "jwks_uri": self.jwks_url,
                "token_endpoint": f"{self.issuer}/token",
                "id_token_signing_alg_values_supported": ["RS256", "PS256", "ES256", "EdDSA"],
            }
        )

    async def _jwks(self, request: web.Request) -> web.Response:
        await self._seen(request)
        return web.json_response(self.jwks())

    async def _token(self, request: web.Request) -> web.Response:
        """Mint a token: form fields ``alg``, ``scope``, ``ttl``, ``sub``, ``aud``; or ``preset`` (cognito...).

        ``dpop_jkt`` (a DPoP key's RFC 7638 thumbprint) binds the token to that key (``cnf.jkt``,
        ``token_type: DPoP``); ``x5t_s256`` binds it to a client certificate (``cnf.x5t#S256``).
        """
        self.hits[request.path] += 1
        data: dict[str, Any] = dict(await request.post())
        alg = str(data.pop("alg", "RS256"))
        if alg not in ALG_KEY:
            return web.json_response({"error": "invalid_request"}, status=400)
        preset = data.pop("preset", None)
        if preset is not None:
            from idp_authorizer.tools.presets import PRESETS

            if preset not in PRESETS:
                return web.json_response({"error": "invalid_request"}, status=400)
            token = self.mint_preset(str(preset), alg=alg)
            return web.json_response({"access_token": token, "token_type": "Bearer", "expires_in": 3600})
        ttl = float(data.pop("ttl", 300))
        scope = str(data.pop("scope", "read"))
        cnf = {name: str(data.pop(field)) for field, name in _CNF_FIELDS.items() if field in data}
        claims: dict[str, Any] = {k: str(v) for k, v in data.items() if k not in ("header", "key")}
        if cnf:
            claims["cnf"] = cnf
        token = self.mint(alg=alg, ttl=ttl, scope=scope, **claims)
        kind = "DPoP" if "jkt" in cnf else "Bearer"
        return web.json_response({"access_token": token, "token_type": kind, "expires_in": int(ttl)})

    def start(self) -> DevIdp:
        """Serve on a background thread; returns once the socket listens (port chosen if 0)."""
        self._server = BackgroundServer("dev-idp", self.host, self.port)
        self.port = self._server.start(self.app())
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> DevIdp:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
