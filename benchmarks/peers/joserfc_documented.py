"""joserfc used as its documentation shows.

``KeySet.import_key_set(jwks)`` once (untimed), then per token
``jwt.decode(token, key_set, algorithms=[alg])`` followed by
``JWTClaimsRegistry(iss=..., aud=..., exp={"essential": True}).validate(token.claims)``.
The claims registry is built once, like the key set (module level in a Lambda).

joserfc 1.8 marks ``EdDSA`` as deprecated by RFC 9864 and emits a ``SecurityWarning`` through
``warnings.warn`` each time the algorithm is looked up; that is its documented behaviour, so it is
left on (the warning machinery's cost is part of the measurement; stderr is discarded).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from joserfc import jwt
from joserfc.jwk import KeySet

from benchmarks.peers._common import BenchInput, Verifier, run_peer


def setup(inp: BenchInput) -> Verifier:
    key_set = KeySet.import_key_set(inp.jwks)  # type: ignore[arg-type]
    algorithms = [inp.alg]
    claims_registry = jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": inp.issuer},
        aud={"essential": True, "value": inp.audience},
        exp={"essential": True},
    )

    def verify(token: str) -> dict[str, Any]:
        decoded = jwt.decode(token, key_set, algorithms=algorithms)
        claims_registry.validate(decoded.claims)
        return decoded.claims

    return Verifier(verify=verify, claims_checked=True)


def main(argv: Sequence[str] | None = None) -> int:
    return run_peer("joserfc (documented)", setup, argv)


if __name__ == "__main__":
    raise SystemExit(main())
