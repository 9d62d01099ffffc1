"""Verification keys from a JWK Set (RFC 7517), each resolved once into ready-to-call verifiers.

joserfc imports and validates each JWK (its public API only: ``JWKRegistry.import_key``, the key
classes, their ``public_key`` and ``curve_name``); the padding and hash of each algorithm come from
RFC 7518 section 3 in :data:`_RSA_SCHEMES` and :data:`_HASHES`, built with ``cryptography``. Both are
resolved once per ``kid``, so verifying a token is one call into ``cryptography``.
A key that cannot be used (unknown ``kty``, ``use`` other than ``sig``, ``key_ops`` without
``verify``, an ``alg`` outside the allowlist, an RSA modulus under 2048 bits, a symmetric key) is
skipped on its own; the good keys next to it still work.
"""

from __future__ import annotations

import binascii
import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, JWKRegistry, OKPKey, RSAKey

logger = logging.getLogger("idp_authorizer.jwk")

Verify = Callable[[bytes, bytes], bool]
"""``verify(signing_input, signature) -> bool``."""

ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519"}
)
_EC_CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}
_HASHES: Mapping[str, type[hashes.HashAlgorithm]] = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}
"""By the digits of ``RS256``, ``PS384``, ``ES512``... (RFC 7518 sections 3.3-3.5)."""
_RSA_SCHEMES: Mapping[str, Callable[[hashes.HashAlgorithm], padding.AsymmetricPadding]] = {
    "RS": lambda _: padding.PKCS1v15(),  # RSASSA-PKCS1-v1_5, section 3.3
    # RSASSA-PSS with MGF1 on the same hash and a salt as long as the hash, section 3.5.
    "PS": lambda digest: padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size),
}
_MIN_RSA_BITS = 2048
_ASYMMETRIC_KTY = frozenset({"RSA", "EC", "OKP"})
MAX_KEYS = 100
"""Keys read from one set. IdPs publish a handful; importing one costs up to a millisecond (an EC point
is checked to be on its curve), so a hostile 512 KB set of thousands of keys would stall the container."""


@dataclass(frozen=True, slots=True)
class VerifyingKey:
    """One public key of a key set with a verifier per algorithm it may be used with."""

    kid: str
    kty: str
    verifiers: Mapping[str, Verify]
    signature_size: int = 0
    """Bytes of a signature by this key (RFC 7518 section 3): what :func:`exercise` passes its verifiers."""


class UnusableKeyError(ValueError):
    """A JWK in the set that this verifier will not use; the reason is logged, not the key."""


class NotForUsError(UnusableKeyError):
    """A sound key for an algorithm outside the allowlist (or declared ``alg`` not allowed)."""


def build_key(jwk: Mapping[str, Any], algorithms: Collection[str]) -> VerifyingKey:
    """Resolve one JWK into a :class:`VerifyingKey` for the allowed ``algorithms``."""
    kid = jwk.get("kid")
    # Printable: the kid of a verified token is logged, and a lone surrogate cannot be written out.
    if not isinstance(kid, str) or not kid or len(kid) > 256 or not kid.isprintable():
        raise UnusableKeyError("missing, oversized or unprintable kid")
    kty = jwk.get("kty")
    # Checked before joserfc sees the key: symmetric keys never come from a key set (no HMAC with a
    # public key), and a non-string kty makes joserfc's registry lookup raise TypeError.
    if not isinstance(kty, str) or kty not in _ASYMMETRIC_KTY:
        raise UnusableKeyError("kty is not RSA, EC or OKP")
    if jwk.get("use", "sig") != "sig":
        raise UnusableKeyError("use is not sig")
    ops = jwk.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
        raise UnusableKeyError("key_ops lacks verify")
    declared = jwk.get("alg")
    if declared is not None and (not isinstance(declared, str) or declared not in algorithms):
        raise NotForUsError("alg not allowed")
    try:
        key = JWKRegistry.import_key(dict(jwk))
    except binascii.Error as exc:
        # joserfc decodes n, e, x, y as strictly as jwt.b64url_decode reads tokens (canonical, unpadded):
        # one rule for every base64url read. Standard encoders never produce anything else.
        raise UnusableKeyError(f"invalid {kty} key: a member is not canonical base64url") from exc
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise UnusableKeyError(f"invalid {kty} key") from exc
    wanted = [alg for alg in algorithms if declared is None or alg == declared]
    verifiers = {alg: verifier for alg in wanted if (verifier := _verifier(key, alg)) is not None}
    if not verifiers:
        raise NotForUsError("no allowed algorithm fits the key")
    return VerifyingKey(kid, kty, verifiers, _signature_size(key.public_key))


def build_key_set(document: Mapping[str, Any], algorithms: Collection[str]) -> dict[str, VerifyingKey]:
    """Every usable key of a JWK Set document by ``kid``; unusable keys are skipped and logged."""
    keys = document.get("keys")
    if not isinstance(keys, list):
        raise ValueError("not a JWK Set: no keys list")
    if len(keys) > MAX_KEYS:
        logger.warning("key set has %d keys: reading the first %d only", len(keys), MAX_KEYS)
    found: dict[str, VerifyingKey] = {}
    for jwk in keys[:MAX_KEYS]:
        if not isinstance(jwk, Mapping):
            continue
        try:
            key = build_key(jwk, algorithms)
        except UnusableKeyError as exc:
            # Keys for algorithms we do not allow are normal in a shared key set; others are worth a warning.
            level = logging.DEBUG if isinstance(exc, NotForUsError) else logging.WARNING
            logger.log(level, "skipping JWK kid=%.64r: %s", jwk.get("kid"), exc)
            continue
        # Two keys under one kid make the choice ambiguous: use neither.
        if key.kid in found:
            logger.warning("skipping JWK kid=%.64r: duplicate kid", key.kid)
            found[key.kid] = VerifyingKey(key.kid, key.kty, {})
            continue
        found[key.kid] = key
    return {kid: key for kid, key in found.items() if key.verifiers}


def exercise(key: VerifyingKey) -> None:
    """Run each of the key's verifiers once on a signature that cannot verify (used at initialization).

    The integers of the probe are 1 (the RSA signature, each ECDSA half): in range, so ``cryptography``
    does the whole computation and builds its per-key state (RSA Montgomery values) before the first
    real token needs it. Nothing is decided here: the result is dropped.
    """
    halves = 2 if key.kty == "EC" else 1
    size = key.signature_size // halves
    probe = (bytes(size - 1) + b"\x01") * halves if size else b""
    for verify in key.verifiers.values():
        verify(b"idp-authorizer: exercise", probe)


def _signature_size(public: Any) -> int:
    if isinstance(public, rsa.RSAPublicKey):
        return (public.key_size + 7) // 8
    if isinstance(public, ec.EllipticCurvePublicKey):
        return 2 * ((public.curve.key_size + 7) // 8)
    return 114 if isinstance(public, ed448.Ed448PublicKey) else 64


def _verifier(key: Any, alg: str) -> Verify | None:
    scheme, digits = alg[:2], alg[2:]
    if isinstance(key, RSAKey) and scheme in _RSA_SCHEMES and digits in _HASHES:
        public = key.public_key
        if not isinstance(public, rsa.RSAPublicKey) or public.key_size < _MIN_RSA_BITS:
            return None
        digest = _HASHES[digits]()
        return _rsa(public, _RSA_SCHEMES[scheme](digest), digest)
    if isinstance(key, ECKey) and _EC_CURVES.get(alg) == key.curve_name:
        public_ec = key.public_key
        assert isinstance(public_ec, ec.EllipticCurvePublicKey)
        return _ecdsa(public_ec, ec.ECDSA(_HASHES[digits]()), (public_ec.curve.key_size + 7) // 8)
    if isinstance(key, OKPKey) and alg in ("EdDSA", "Ed25519") and key.curve_name in ("Ed25519", "Ed448"):
        public_ed = key.public_key
        if alg == "Ed25519" and not isinstance(public_ed, ed25519.Ed25519PublicKey):
            return None
        assert isinstance(public_ed, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey)
        return _eddsa(public_ed)
    return None


def _rsa(public: rsa.RSAPublicKey, pad: padding.AsymmetricPadding, digest: hashes.HashAlgorithm) -> Verify:
    def verify(message: bytes, signature: bytes) -> bool:
        try:
            public.verify(signature, message, pad, digest)
        except InvalidSignature:
            return False
        return True

    return verify


def _ecdsa(public: ec.EllipticCurvePublicKey, scheme: ec.ECDSA, size: int) -> Verify:
    def verify(message: bytes, signature: bytes) -> bool:
        # JWS carries raw r || s (RFC 7518 section 3.4), never DER; zero or out-of-range halves are forgeries.
        if len(signature) != 2 * size:
            return False
        r = int.from_bytes(signature[:size], "big")
        s = int.from_bytes(signature[size:], "big")
        if r == 0 or s == 0:
            return False
        try:
            public.verify(encode_dss_signature(r, s), message, scheme)
        except InvalidSignature:
            return False
        return True

    return verify


def _eddsa(public: ed25519.Ed25519PublicKey | ed448.Ed448PublicKey) -> Verify:
    def verify(message: bytes, signature: bytes) -> bool:
        try:
            public.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    return verify
