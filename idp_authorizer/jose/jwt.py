"""JWT access tokens (RFC 7519, RFC 9068): decompose, check alg, verify, check claims.

The pipeline follows aws-jwt-verify: decompose the compact JWS (RFC 7515 section 7.1) → check the
``alg`` against the allowlist from settings (never from the token) → find the key by ``kid`` →
verify the signature → check the claims (``exp`` essential, ``nbf``/``iat`` not in the future,
``iss`` exact or one tenant of a template (:mod:`.issuer`), ``aud`` any-of, the client when listed).
Header parameters that point at keys (``jku``, ``x5u``, ``jwk``,
``x5c``) are never used: keys come only from the configured key set.
"""

from __future__ import annotations

import binascii
import json
import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

from idp_authorizer.core.errors import InvalidToken, Reason
from idp_authorizer.jose.issuer import Issuers

_B64URL = bytes.maketrans(b"-_", b"+/")
# By length mod 4, the characters that may end a canonical part: after a whole quantum any of the
# alphabet; with 2 characters in the last quantum, 4 unused bits (values 0, 16, 32, 48); with 3, 2
# unused bits (values divisible by 4); a part of length 1 mod 4 is never valid.
_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_CANONICAL_LAST = (_ALPHABET, b"", _ALPHABET[::16], _ALPHABET[::4])
# RFC 9068 section 2.1 and RFC 7519 section 5.1: the types an access token may declare, compared
# case-insensitively and without "application/" (RFC 7515 section 4.1.9).
ACCESS_TOKEN_TYPES = frozenset({"jwt", "at+jwt"})


class CompactJws(NamedTuple):
    """A JWS compact serialization split into its parts; header and claims are NOT yet verified."""

    unverified_header: dict[str, Any]
    unverified_claims: dict[str, Any]
    signing_input: bytes
    signature: bytes


def b64url_decode(part: bytes) -> bytes:
    """Strict, canonical base64url without padding (RFC 7515 section 2, RFC 4648 section 3.5).

    ``=``, ``+`` and ``/`` (padding, plain base64) are refused here; after ``-``/``_`` are mapped to them, strict
    mode refuses every character outside the alphabet. A lenient decoder ignores the unused low bits
    of the last character, so one token would have up to 16 accepted spellings, each its own cache
    key and fingerprint: the last character must leave them zero, and a length of 1 mod 4 encodes no
    whole byte at all. One lookup in a string of 4 or 16 characters, whatever the part's length.
    """
    if not part or b"=" in part or b"+" in part or b"/" in part or part[-1] not in _CANONICAL_LAST[len(part) % 4]:
        raise ValueError("not canonical base64url")
    return binascii.a2b_base64(part.translate(_B64URL) + b"=" * (-len(part) % 4), strict_mode=True)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate member names")
    return result


_ABSENT: Any = object()
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


_last: tuple[str, CompactJws] | None = None


def decompose(token: str) -> CompactJws:
    """Split and decode a compact JWS; raises :class:`InvalidToken` for anything malformed.

    The last token decoded is remembered (by identity): routing by ``iss``, the cached-key attempt and
    the verification after a key fetch all read the same request's token, which is decoded once.
    Callers read the result and never change it.

    Each part must be non-empty strict base64url (no padding, no ``+``, ``/`` or other characters).
    """
    global _last  # noqa: PLW0603 - a one-entry memo for the request being decided
    last = _last
    if last is not None and last[0] is token:
        return last[1]
    try:
        data = token.encode("ascii")
    except UnicodeEncodeError:
        raise InvalidToken(Reason.MALFORMED_TOKEN, "token is not ASCII") from None
    parts = data.split(b".")
    if len(parts) != 3:
        code = Reason.JWE_NOT_SUPPORTED if len(parts) == 5 else Reason.MALFORMED_TOKEN
        raise InvalidToken(code, "not a JWS compact serialization")
    header_b64, payload_b64, signature_b64 = parts
    try:
        header = _header(header_b64)
        claims = _json_object(b64url_decode(payload_b64))
        signature = b64url_decode(signature_b64)
    except (ValueError, RecursionError, UnicodeError, binascii.Error) as exc:
        raise InvalidToken(Reason.MALFORMED_TOKEN, "token parts are not base64url JSON") from exc
    jws = CompactJws(header, claims, data[: len(header_b64) + 1 + len(payload_b64)], signature)
    _last = (token, jws)
    return jws


def check_header(header: Mapping[str, Any], algorithms: Collection[str], required_typ: str | None) -> tuple[str, str]:
    """``(alg, kid)`` of a header that passes the allowlist; raises :class:`InvalidToken` otherwise."""
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in algorithms:
        raise InvalidToken(Reason.ALG_NOT_ALLOWED, "token algorithm is not allowed")
    if "crit" in header:
        # RFC 7515 section 4.1.11: extensions we do not understand make the token invalid.
        raise InvalidToken(Reason.CRIT_NOT_SUPPORTED, "token has critical header extensions")
    if header.get("b64", True) is not True:
        # RFC 7797: false asks for an unencoded payload, which is never accepted; any other value is malformed.
        raise InvalidToken(Reason.MALFORMED_TOKEN, "b64 must be absent or true: unencoded payloads are not accepted")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid or len(kid) > 256:
        raise InvalidToken(Reason.MISSING_KID, "token header has no usable kid")
    _check_typ(header.get("typ", _ABSENT), required_typ)
    if not _HEADER_FORMS.keys().isdisjoint(header):
        _check_forms(header)
    return alg, kid


def _is_url(value: object) -> bool:
    return isinstance(value, str) and value.startswith(("https://", "http://"))


def _is_strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


_HEADER_FORMS: dict[str, Callable[[object], bool]] = {
    "jku": _is_url,
    "x5u": _is_url,
    "jwk": lambda value: isinstance(value, dict),
    "x5c": _is_strings,
    "x5t": lambda value: isinstance(value, str),
    "x5t#S256": lambda value: isinstance(value, str),
    "cty": lambda value: isinstance(value, str),
}
"""RFC 7515 section 4.1: the form of each registered header parameter the product does not read."""


def _check_forms(header: Mapping[str, Any]) -> None:
    # Never followed or used (keys come only from the configured key set), but a member in a form its
    # RFC does not allow makes the token malformed: what joserfc refuses is refused here too.
    for name, valid in _HEADER_FORMS.items():
        if name in header and not valid(header[name]):
            raise InvalidToken(Reason.MALFORMED_TOKEN, f"header parameter {name} is not in its registered form")


def _check_typ(typ: object, required_typ: str | None) -> None:
    """Refuse a token whose ``typ`` says it is not an access token (RFC 8725 section 3.11).

    With ``IDP_REQUIRED_TYP`` set the type must be that one; otherwise an absent ``typ`` or ``JWT`` is
    accepted (most IdPs send one of those), ``at+jwt`` of course, and any other explicit type is a
    different kind of token: a logout token (``logout+jwt``), a security event (``secevent+jwt``), a DPoP
    proof (``dpop+jwt``) of the same IdP and audience must not open the API.
    """
    if typ is _ABSENT:
        if required_typ is not None:
            raise InvalidToken(Reason.WRONG_TYP, "token typ is not the required access-token type")
        return
    if not isinstance(typ, str):
        raise InvalidToken(Reason.MALFORMED_TOKEN, "token typ is not a string")
    normalized = typ.lower().removeprefix("application/")
    if required_typ is not None:
        # "at+jwt" and "application/at+jwt" are one type, however the setting spells it.
        if normalized != required_typ.lower().removeprefix("application/"):
            raise InvalidToken(Reason.WRONG_TYP, "token typ is not the required access-token type")
    elif normalized not in ACCESS_TOKEN_TYPES:
        raise InvalidToken(Reason.NOT_AN_ACCESS_TOKEN, "token typ names another kind of token")


def numeric_date(claims: Mapping[str, Any], name: str, *, required: bool = False) -> float | None:
    """A NumericDate claim (RFC 7519 section 2) as a float; ``None`` when absent and not required."""
    value = claims.get(name)
    if value is None and not required:
        if name in claims:
            raise InvalidToken(Reason.of(f"invalid_{name}", Reason.INVALID_TOKEN), f"{name} is null")
        return None
    # An int beyond the float range (10**400) overflows math.isfinite and float(): not a NumericDate either.
    number = float(value) if isinstance(value, float) or (isinstance(value, int) and abs(value) < 2**63) else None
    if isinstance(value, bool) or number is None or not math.isfinite(number):
        raise InvalidToken(
            Reason.of(f"invalid_{name}" if value is not None else f"missing_{name}", Reason.INVALID_TOKEN),
            f"{name} is not a NumericDate",
        )
    return number


CLIENT_CLAIMS = ("client_id", "azp", "cid", "appid")
"""Where a token names its client, first present wins: RFC 9068 ``client_id``, OIDC ``azp``, Okta ``cid``,
Entra v1 ``appid``."""


class Checked(NamedTuple):
    """What :meth:`ClaimRules.check` vouches for."""

    exp: float
    issuer: str
    audiences: tuple[str, ...]
    client: str | None


@dataclass(frozen=True, slots=True)
class ClaimRules:
    """What the claims of a verified token must satisfy (RFC 7519 section 4.1, RFC 9068 section 4).

    ``audiences`` any-of (empty: ``aud`` is not required, for presets that pin the client instead);
    ``clients`` an allowlist of the token's client (:func:`client_of`), empty for any, and
    ``client_required`` whether a token must name its client at all; ``token_use`` the value Cognito's
    ``token_use`` must have, else an ID token (``token_use: id``) is refused; ``access_claims``, when
    set, claims of which an access token has at least one (Entra: ``scp`` or ``roles``, which an ID
    token of the same app and audience lacks).
    """

    issuers: Issuers
    audiences: frozenset[str]
    leeway: float = 0.0
    clients: frozenset[str] = frozenset()
    client_claims: tuple[str, ...] = CLIENT_CLAIMS
    client_required: bool = False
    token_use: str | None = None
    access_claims: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.audiences and not self.clients:
            # A token of this issuer for any API of any client: no configuration may mean that.
            raise ValueError("claim rules check neither an audience nor a client")

    def check(self, claims: Mapping[str, Any], now: float) -> Checked:
        """What passed; raises :class:`InvalidToken` naming the first failure."""
        exp = check_times(claims, now, self.leeway, exp_required=True, check_iat=True)
        assert exp is not None
        issuer = self.issuers.check(claims)
        audiences = audiences_of(claims.get("aud"), required=bool(self.audiences))
        if self.audiences and self.audiences.isdisjoint(audiences):
            raise InvalidToken(Reason.WRONG_AUDIENCE, "token audience is not accepted")
        if not isinstance(claims.get("jti", ""), str):
            raise InvalidToken(Reason.INVALID_JTI, "token jti is not a string")  # RFC 7519 section 4.1.7
        token_use = claims.get("token_use")
        if self.token_use is not None and token_use != self.token_use:
            raise InvalidToken(Reason.WRONG_TOKEN_USE, f"token_use is not {self.token_use!r}")
        if self.token_use is None and token_use == "id":  # noqa: S105 - a token kind, not a secret
            raise InvalidToken(Reason.WRONG_TOKEN_USE, "an ID token is not an access token")
        if self.access_claims and not any(name in claims for name in self.access_claims):
            raise InvalidToken(Reason.NOT_AN_ACCESS_TOKEN, f"token has none of {', '.join(self.access_claims)}")
        client = client_of(claims, self.clients, self.client_claims, required=self.client_required)
        return Checked(exp, issuer, audiences, client)


def client_of(
    claims: Mapping[str, Any],
    allowed: Collection[str],
    names: tuple[str, ...] = CLIENT_CLAIMS,
    *,
    required: bool = False,
) -> str | None:
    """The token's client: the first of ``names`` present (:data:`CLIENT_CLAIMS`), a string, else ``None``.

    With an ``allowed`` list (``IDP_CLIENT_IDS``) it must be in it, and every one of ``names`` the token
    carries must name the same client (a custom ``client_id`` claim cannot stand in for Keycloak's
    ``azp``); a token with no client, or a client not listed, is refused (``wrong_client``), as is one
    with no client when ``required``.
    """
    present = [claims[name] for name in names if name in claims]
    client = present[0] if present and isinstance(present[0], str) and present[0] else None
    if (allowed or required) and client is None:
        raise InvalidToken(Reason.WRONG_CLIENT, "token names no client")
    if allowed and (client not in allowed or any(value != client for value in present)):
        raise InvalidToken(Reason.WRONG_CLIENT, "token client is not an accepted client")
    return client


def check_times(
    claims: Mapping[str, Any], now: float, leeway: float, *, exp_required: bool, check_iat: bool
) -> float | None:
    """The time checks every verdict needs (``exp``, ``nbf``, and ``iat`` for JWTs), with ``leeway``; ``exp``."""
    exp = numeric_date(claims, "exp", required=exp_required)
    if exp is not None and now >= exp + leeway:
        raise InvalidToken(Reason.EXPIRED, "token has expired")
    nbf = numeric_date(claims, "nbf")
    if nbf is not None and nbf > now + leeway:
        raise InvalidToken(Reason.NOT_YET_VALID, "token is not valid yet")
    iat = numeric_date(claims, "iat") if check_iat else None
    if iat is not None and iat > now + leeway:
        raise InvalidToken(Reason.ISSUED_IN_FUTURE, "token iat is in the future")
    return exp


def audiences_of(value: object, *, required: bool) -> tuple[str, ...]:
    """``aud`` as a tuple (RFC 7519 section 4.1.3: a string or an array of strings)."""
    if value is None and not required:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise InvalidToken(Reason.WRONG_AUDIENCE, "token has no valid aud")
