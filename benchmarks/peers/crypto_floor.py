"""Signature-only floor: ``cryptography`` called directly with a pre-loaded public key.

Per token: split on '.', base64url-decode the signature, verify it over ``header.payload``.
ES256 signatures arrive as raw ``r || s`` and are converted to DER first. No header parsing, no
``kid`` lookup, no claim checks: this is the least work any correct verifier has to do.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from benchmarks.peers._common import BenchInput, PeerUnavailable, Verifier, run_peer


def _b64d(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _int(segment: str) -> int:
    return int.from_bytes(_b64d(segment), "big")


def _find_jwk(jwks: dict[str, Any], alg: str) -> dict[str, Any]:
    for jwk in jwks.get("keys", []):
        if jwk.get("alg") == alg:
            return dict(jwk)
    raise PeerUnavailable(f"no key with alg {alg} in the JWKS")


def build_verify(alg: str, jwk: dict[str, Any]) -> Callable[[str], None]:
    b64d = _b64d
    if alg in ("RS256", "PS256"):
        rsa_key = rsa.RSAPublicNumbers(_int(jwk["e"]), _int(jwk["n"])).public_key()
        sha256 = hashes.SHA256()
        pad: padding.AsymmetricPadding = (
            padding.PKCS1v15()
            if alg == "RS256"
            else padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
        )
        rsa_verify = rsa_key.verify

        def verify_rsa(token: str) -> None:
            signing_input, _, sig = token.rpartition(".")
            rsa_verify(b64d(sig), signing_input.encode("ascii"), pad, sha256)

        return verify_rsa

    if alg == "ES256":
        ec_key = ec.EllipticCurvePublicNumbers(_int(jwk["x"]), _int(jwk["y"]), ec.SECP256R1()).public_key()
        ecdsa = ec.ECDSA(hashes.SHA256())
        ec_verify = ec_key.verify

        def verify_ec(token: str) -> None:
            signing_input, _, sig_b64 = token.rpartition(".")
            sig = b64d(sig_b64)
            if len(sig) != 64:
                raise ValueError("bad ES256 signature length")
            der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
            ec_verify(der, signing_input.encode("ascii"), ecdsa)

        return verify_ec

    if alg == "EdDSA":
        ed_verify = Ed25519PublicKey.from_public_bytes(b64d(jwk["x"])).verify

        def verify_ed(token: str) -> None:
            signing_input, _, sig = token.rpartition(".")
            ed_verify(b64d(sig), signing_input.encode("ascii"))

        return verify_ed

    raise PeerUnavailable(f"unsupported algorithm {alg}")


def setup(inp: BenchInput) -> Verifier:
    verify = build_verify(inp.alg, _find_jwk(inp.jwks, inp.alg))
    return Verifier(verify=verify, claims_checked=False)


def main(argv: Sequence[str] | None = None) -> int:
    return run_peer("crypto-floor", setup, argv)


if __name__ == "__main__":
    raise SystemExit(main())
