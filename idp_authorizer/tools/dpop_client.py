"""The client side of DPoP (RFC 9449), for the dev IdP, ``invoke`` and the tests: a key pair and its proofs.

A :class:`DpopKey` is what a DPoP client holds: a private key whose public half goes in each proof's
header, and whose RFC 7638 thumbprint (:attr:`DpopKey.jkt`) the IdP writes into ``cnf.jkt`` of the
tokens it binds to it. Never on the Lambda path.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from joserfc import jws
from joserfc.jwk import ECKey, Key, OKPKey, RSAKey

from idp_authorizer.jose.dpop import access_token_hash, jwk_thumbprint


def _generate(alg: str) -> Key:
    if alg == "ES256":
        return ECKey.generate_key("P-256", private=True)
    if alg in ("RS256", "PS256"):
        return RSAKey.generate_key(2048, private=True)
    if alg == "EdDSA":
        return OKPKey.generate_key("Ed25519", private=True)
    raise ValueError(f"no DPoP key type for {alg}")


class DpopKey:
    """A DPoP client key for one algorithm (``ES256``, ``RS256``, ``PS256`` or ``EdDSA``)."""

    def __init__(self, alg: str = "ES256", key: Key | None = None) -> None:
        self.alg = alg
        self.key: Key = key or _generate(alg)
        self.public_jwk: dict[str, Any] = dict(self.key.as_dict(private=False))
        self.jkt = jwk_thumbprint(self.public_jwk)

    def proof(
        self,
        method: str,
        url: str,
        access_token: str | None = None,
        *,
        iat: Any = None,
        jti: str | None = None,
        header: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """A proof for ``method url`` (``ath`` of ``access_token``); ``header``, ``claims`` override, ``None`` drops."""
        body: dict[str, Any] = {
            "htm": method,
            "htu": url,
            "iat": int(time.time()) if iat is None else iat,
            "jti": jti or uuid.uuid4().hex,
        }
        if access_token is not None:
            body["ath"] = access_token_hash(access_token)
        body.update(claims)
        protected = {"typ": "dpop+jwt", "alg": self.alg, "jwk": self.public_jwk, **(header or {})}
        protected = {name: value for name, value in protected.items() if value is not None}
        body = {name: value for name, value in body.items() if value is not None}
        payload = json.dumps(body, separators=(",", ":")).encode()
        return jws.serialize_compact(protected, payload, self.key, algorithms=[protected["alg"]])
