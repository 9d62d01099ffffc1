"""DPoP proofs (RFC 9449 section 4.3) and the confirmation thumbprints of sender-constrained tokens.

:func:`check_proof` checks one proof JWT against the request it came with and the access token it
accompanies; what it returns (the key's RFC 7638 thumbprint, ``jti``, ``iat``) is compared with the
token's ``cnf.jkt`` and the replay cache by the caller. :func:`cert_thumbprint` is RFC 8705 section 3.1's
``x5t#S256`` of a client certificate. No I/O; keys are imported with joserfc and verified with
``cryptography`` exactly as key-set keys are (:func:`~idp_authorizer.jose.jwk.build_key`).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections import OrderedDict
from collections.abc import Collection, Mapping
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from idp_authorizer.core.errors import InvalidToken, Reason
from idp_authorizer.jose.jwk import UnusableKeyError, VerifyingKey, build_key
from idp_authorizer.jose.jwt import decompose, numeric_date

MAX_PROOF_BYTES = 8 * 1024
_THUMBPRINT_MEMBERS: Mapping[str, tuple[str, ...]] = {
    "RSA": ("e", "kty", "n"),
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
}
"""RFC 7638 section 3.2 (and RFC 8037 section 2 for OKP): the required members, in lexicographic order."""
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
"""Members of a private (or symmetric) JWK (RFC 7518 section 6): a proof carrying one is refused."""
_KEYS_KEPT = 256
_keys: OrderedDict[tuple[str, str], VerifyingKey] = OrderedDict()
"""Imported proof keys by (thumbprint, alg): a client signs every proof with the same key."""


class Proof(NamedTuple):
    """What a valid proof vouches for."""

    jkt: str
    """The RFC 7638 SHA-256 thumbprint of the proof's public key, to compare with ``cnf.jkt``."""
    jti: str
    iat: float


def b64url(data: bytes) -> str:
    """Unpadded base64url (RFC 7515 section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def access_token_hash(token: str) -> str:
    """``ath``: base64url(SHA-256(ASCII of the access token)), RFC 9449 section 4.2."""
    return b64url(hashlib.sha256(token.encode("ascii")).digest())


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """The RFC 7638 SHA-256 thumbprint of a public JWK; raises ``ValueError`` for a key it cannot name."""
    kty = jwk.get("kty")
    members = _THUMBPRINT_MEMBERS.get(kty) if isinstance(kty, str) else None
    # ASCII: base64url members always are, and a lone surrogate (from a JSON escape) could not be encoded.
    if members is None or not all(isinstance(jwk.get(name), str) and jwk[name].isascii() for name in members):
        raise ValueError("not an RSA, EC or OKP public key with its required members")
    canonical = json.dumps({name: jwk[name] for name in members}, separators=(",", ":"), ensure_ascii=False)
    return b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


def normalized_url(url: str) -> str:
    """``url`` as compared for ``htu``: lower-case scheme and host, no default port, no query or fragment.

    RFC 9449 section 4.3 asks for syntax- and scheme-based normalization (RFC 3986 sections 6.2.2 and
    6.2.3) and ignores the query and fragment. The path is kept as written (an empty one is ``/``).
    Raises ``ValueError`` for a URL without a scheme and host.
    """
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), (parts.hostname or "")
    if not scheme or not host or parts.username is not None or parts.password is not None:
        raise ValueError("not an absolute URL with a host")
    port = parts.port
    netloc = host if port is None or (scheme, port) in (("https", 443), ("http", 80)) else f"{host}:{port}"
    return f"{scheme}://{netloc}{parts.path or '/'}"


def check_proof(
    proof: str,
    *,
    method: str,
    url: str,
    access_token: str,
    algorithms: Collection[str],
    max_age: float,
    leeway: float,
    now: float,
) -> Proof:
    """Check a DPoP proof (RFC 9449 section 4.3, steps 2-11 but the nonce); raises :class:`InvalidToken`.

    ``url`` is the request's URL as the client called it (already without query); ``algorithms`` the
    allowlist from settings, asymmetric only. The replay check (step 11's ``jti``) is the caller's.
    """
    if len(proof) > MAX_PROOF_BYTES:
        raise InvalidToken(Reason.DPOP_PROOF_INVALID, "DPoP proof is too large")
    try:
        jws = decompose(proof)
    except InvalidToken:
        raise InvalidToken(Reason.DPOP_PROOF_INVALID, "DPoP proof is not a JWS compact serialization") from None
    header = jws.unverified_header
    alg = _check_header(header, algorithms)
    jkt, key = _proof_key(header.get("jwk"), alg)
    if not key.verifiers[alg](jws.signing_input, jws.signature):
        raise InvalidToken(Reason.DPOP_BAD_SIGNATURE, "DPoP proof signature does not verify with its jwk")
    claims = jws.unverified_claims  # verified from here on
    _check_request(claims, method, url)
    iat = _check_iat(claims, max_age, leeway, now)
    if claims.get("ath") != access_token_hash(access_token):
        raise InvalidToken(Reason.DPOP_ATH_MISMATCH, "DPoP proof ath is not the hash of this access token")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > 256:
        raise InvalidToken(Reason.DPOP_PROOF_INVALID, "DPoP proof has no usable jti")
    return Proof(jkt, jti, iat)


def _check_header(header: Mapping[str, Any], algorithms: Collection[str]) -> str:
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() != "dpop+jwt":
        raise InvalidToken(Reason.DPOP_WRONG_TYP, "DPoP proof typ is not dpop+jwt")
    alg = header.get("alg")
    # The allowlist comes from settings and holds asymmetric algorithms only: never none, never HMAC.
    if not isinstance(alg, str) or alg not in algorithms:
        raise InvalidToken(Reason.DPOP_ALG_NOT_ALLOWED, "DPoP proof algorithm is not allowed")
    if "crit" in header:
        raise InvalidToken(Reason.DPOP_PROOF_INVALID, "DPoP proof has critical header extensions")
    return alg


def _proof_key(jwk: object, alg: str) -> tuple[str, VerifyingKey]:
    """The thumbprint and verifier of the proof's ``jwk`` header; imported once per key and ``alg``."""
    if not isinstance(jwk, dict):
        raise InvalidToken(Reason.DPOP_JWK_INVALID, "DPoP proof header has no jwk object")
    if not _PRIVATE_MEMBERS.isdisjoint(jwk):
        # RFC 9449 section 4.3 step 7: the jwk must not contain a private key.
        raise InvalidToken(Reason.DPOP_PRIVATE_KEY, "DPoP proof jwk holds private key members")
    try:
        jkt = jwk_thumbprint(jwk)
    except ValueError:
        raise InvalidToken(Reason.DPOP_JWK_INVALID, "DPoP proof jwk is not a public key") from None
    key = _keys.get((jkt, alg))
    if key is None:
        # Only the members the thumbprint names: another spelling of the same key is the same key.
        members = {name: jwk[name] for name in _THUMBPRINT_MEMBERS[jwk["kty"]]}
        try:
            key = build_key({**members, "kid": "dpop"}, (alg,))
        except UnusableKeyError:
            raise InvalidToken(Reason.DPOP_JWK_INVALID, "DPoP proof jwk is not usable with its alg") from None
        if len(_keys) >= _KEYS_KEPT:
            _keys.popitem(last=False)
        _keys[(jkt, alg)] = key
    return jkt, key


def _check_request(claims: Mapping[str, Any], method: str, url: str) -> None:
    if claims.get("htm") != method:
        raise InvalidToken(Reason.DPOP_HTM_MISMATCH, "DPoP proof htm is not the request method")
    htu = claims.get("htu")
    try:
        same = isinstance(htu, str) and normalized_url(htu) == normalized_url(url)
    except ValueError:
        same = False
    if not same:
        raise InvalidToken(Reason.DPOP_HTU_MISMATCH, "DPoP proof htu is not the request URL")


def _check_iat(claims: Mapping[str, Any], max_age: float, leeway: float, now: float) -> float:
    try:
        iat = numeric_date(claims, "iat", required=True)
    except InvalidToken:
        raise InvalidToken(Reason.DPOP_PROOF_INVALID, "DPoP proof has no NumericDate iat") from None
    assert iat is not None
    if iat > now + leeway:
        raise InvalidToken(Reason.DPOP_ISSUED_IN_FUTURE, "DPoP proof iat is in the future")
    if iat < now - max_age - leeway:
        raise InvalidToken(Reason.DPOP_PROOF_EXPIRED, "DPoP proof iat is older than IDP_DPOP_MAX_AGE_SECONDS")
    return iat


def cert_thumbprint(pem: str) -> str:
    """``x5t#S256`` of a PEM client certificate: base64url(SHA-256(DER)), RFC 8705 section 3.1.

    Raises ``ValueError`` when ``pem`` is not one X.509 certificate.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    certificate = x509.load_pem_x509_certificate(pem.encode("ascii"))
    return b64url(hashlib.sha256(certificate.public_bytes(Encoding.DER)).digest())
