"""JWT access tokens (RFC 7519, RFC 9068): decompose, check alg, verify, check claims.

The pipeline follows aws-jwt-verify: decompose the compact JWS (RFC 7515 section 7.1) → check the
``alg`` against the allowlist from settings (never from the token) → find the key by ``kid`` →
verify the signature → check the claims (``exp`` essential, ``nbf``/``iat`` not in the future,
``iss`` exact, ``aud`` any-of). Header parameters that point at keys (``jku``, ``x5u``, ``jwk``,
``x5c``) are never used: keys come only from the configured key set.
"""

from __future__ import annotations

import binascii
import json
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

from idp_authorizer.errors import InvalidToken

_B64URL = bytes.maketrans(b"-_", b"+/")


class CompactJws(NamedTuple):
    """A JWS compact serialization split into its parts; header and claims are NOT yet verified."""

    unverified_header: dict[str, Any]
    unverified_claims: dict[str, Any]
    signing_input: bytes
    signature: bytes


def b64url_decode(part: bytes) -> bytes:
    """Strict base64url without padding (RFC 7515 section 2): any other character is refused.

    ``=``, ``+`` and ``/`` (padding, plain base64) are refused here; after ``-``/``_`` are mapped to them, strict
    mode refuses every character outside the alphabet.
    """
    if not part or b"=" in part or b"+" in part or b"/" in part:
        raise ValueError("not base64url")
    return binascii.a2b_base64(part.translate(_B64URL) + b"=" * (-len(part) % 4), strict_mode=True)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate member names")
    return result


_SCAN: Any = json.JSONDecoder(object_pairs_hook=_unique_keys).scan_once  # type: ignore[attr-defined]
_JSON_SPACE = " \t\n\r"


def _json_object(raw: bytes) -> dict[str, Any]:
    # RFC 8259 JSON text exchanged between systems must be UTF-8; no BOM, no UTF-16 guessing.
    text = raw.decode("utf-8", "strict").strip(_JSON_SPACE)
    # The decoder's scanner directly: json.loads would build a decoder per call and match
    # whitespace with regular expressions, several microseconds per token on the hot path.
    try:
        value, end = _SCAN(text, 0)
    except StopIteration:
        raise ValueError("not JSON") from None
    if end != len(text) or not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def is_compact_jws(token: str) -> bool:
    """Whether ``token`` has the shape of a JWS compact serialization (three dot-separated parts)."""
    return token.count(".") == 2


@lru_cache(maxsize=256)
def _header(header_b64: bytes) -> dict[str, Any]:
    """Decode a protected header; an issuer signs every token with the same few, so they are remembered.

    Only headers that decode to a JSON object are kept (a failure raises, and is not cached); callers
    read them and never change them.
    """
    return _json_object(b64url_decode(header_b64))


def decompose(token: str) -> CompactJws:
    """Split and decode a compact JWS; raises :class:`InvalidToken` for anything malformed.

    Each part must be non-empty strict base64url (no padding, no ``+``, ``/`` or other characters).
    """
    try:
        data = token.encode("ascii")
    except UnicodeEncodeError:
        raise InvalidToken("malformed_token", "token is not ASCII") from None
    parts = data.split(b".")
    if len(parts) != 3:
        code = "jwe_not_supported" if len(parts) == 5 else "malformed_token"
        raise InvalidToken(code, "not a JWS compact serialization")
    header_b64, payload_b64, signature_b64 = parts
    try:
        header = _header(header_b64)
        claims = _json_object(b64url_decode(payload_b64))
        signature = b64url_decode(signature_b64)
    except (ValueError, RecursionError, UnicodeError, binascii.Error) as exc:
        raise InvalidToken("malformed_token", "token parts are not base64url JSON") from exc
    return CompactJws(header, claims, data[: len(header_b64) + 1 + len(payload_b64)], signature)


def check_header(header: Mapping[str, Any], algorithms: Collection[str], required_typ: str | None) -> tuple[str, str]:
    """``(alg, kid)`` of a header that passes the allowlist; raises :class:`InvalidToken` otherwise."""
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in algorithms:
        raise InvalidToken("alg_not_allowed", "token algorithm is not allowed")
    if "crit" in header:
        # RFC 7515 section 4.1.11: extensions we do not understand make the token invalid.
        raise InvalidToken("crit_not_supported", "token has critical header extensions")
    if header.get("b64") is False:
        raise InvalidToken("malformed_token", "unencoded payloads are not accepted")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid or len(kid) > 256:
        raise InvalidToken("missing_kid", "token header has no usable kid")
    if required_typ is not None:
        typ = header.get("typ")
        normalized = typ.lower().removeprefix("application/") if isinstance(typ, str) else None
        # RFC 9068 section 2.1 / RFC 7515 section 4.1.9: "at+jwt" and "application/at+jwt" are one type,
        # compared case-insensitively, however the setting spells it.
        if normalized != required_typ.lower().removeprefix("application/"):
            raise InvalidToken("wrong_typ", "token typ is not the required access-token type")
    return alg, kid


def numeric_date(claims: Mapping[str, Any], name: str, *, required: bool = False) -> float | None:
    """A NumericDate claim (RFC 7519 section 2) as a float; ``None`` when absent and not required."""
    value = claims.get(name)
    if value is None and not required:
        if name in claims:
            raise InvalidToken(f"invalid_{name}", f"{name} is null")
        return None
    # An int beyond the float range (10**400) overflows math.isfinite and float(): not a NumericDate either.
    number = float(value) if isinstance(value, float) or (isinstance(value, int) and abs(value) < 2**63) else None
    if isinstance(value, bool) or number is None or not math.isfinite(number):
        raise InvalidToken(
            f"invalid_{name}" if value is not None else f"missing_{name}", f"{name} is not a NumericDate"
        )
    return number


@dataclass(frozen=True, slots=True)
class ClaimRules:
    """What the claims of a verified token must satisfy (RFC 7519 section 4.1, RFC 9068 section 4)."""

    issuer: str
    audiences: frozenset[str]
    leeway: float = 0.0
    reject_token_use: frozenset[str] = frozenset({"id"})

    def check(self, claims: Mapping[str, Any], now: float) -> tuple[float, tuple[str, ...]]:
        """``(exp, audiences)`` of claims that pass; raises :class:`InvalidToken` naming the first failure."""
        exp = numeric_date(claims, "exp", required=True)
        assert exp is not None
        if now >= exp + self.leeway:
            raise InvalidToken("expired", "token has expired")
        nbf = numeric_date(claims, "nbf", required=False)
        if nbf is not None and nbf > now + self.leeway:
            raise InvalidToken("not_yet_valid", "token is not valid yet")
        iat = numeric_date(claims, "iat", required=False)
        if iat is not None and iat > now + self.leeway:
            raise InvalidToken("issued_in_future", "token iat is in the future")
        if claims.get("iss") != self.issuer:
            raise InvalidToken("wrong_issuer", "token issuer is not the expected one")
        audiences = _audiences(claims.get("aud"))
        if self.audiences.isdisjoint(audiences):
            raise InvalidToken("wrong_audience", "token audience is not accepted")
        if claims.get("token_use") in self.reject_token_use:
            raise InvalidToken("wrong_token_use", "an ID token is not an access token")
        return exp, audiences


def _audiences(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise InvalidToken("wrong_audience", "token has no valid aud")
