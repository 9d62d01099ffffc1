"""PyJWT written the way the AWS blueprint and the tutorials do it.

The tutorials' shape (PyJWKClient-style): read the unverified header, pick the signing key by
``kid`` from the key set, then ``jwt.decode(token, key, algorithms=[...], audience=..., issuer=...)``.
The JWKS is fetched once (here: read from ``jwks.json``) and parsed into a ``jwt.PyJWKSet`` before
timing, as a module-level ``PyJWKClient`` cache would hold it; no network in the timed loop.
``exp``, ``iss`` and ``aud`` are required (``options={"require": [...]}``) so a token without them is
refused, the same checks the other peers make.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jwt

from benchmarks.peers._common import BenchInput, Verifier, run_peer


def setup(inp: BenchInput) -> Verifier:
    jwk_set = jwt.PyJWKSet.from_dict(inp.jwks)  # "fetched" once, outside the timed loop
    algorithms = [inp.alg]
    issuer = inp.issuer
    audience = inp.audience
    options: Any = {"require": ["exp", "iss", "aud"]}

    def verify(token: str) -> dict[str, Any]:
        header = jwt.get_unverified_header(token)
        signing_key = jwk_set[header["kid"]]
        return jwt.decode(
            token,
            signing_key.key,
            algorithms=algorithms,
            audience=audience,
            issuer=issuer,
            options=options,
        )

    return Verifier(verify=verify, claims_checked=True)


def main(argv: Sequence[str] | None = None) -> int:
    return run_peer("pyjwt (blueprint)", setup, argv)


if __name__ == "__main__":
    raise SystemExit(main())
