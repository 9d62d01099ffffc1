"""A differential test of the hand-written JWS path (the real handler) against joserfc.

Both sides judge the same tokens with the same key set (the dev IdP's, imported by
``joserfc.jwk.KeySet.import_key_set``), the same algorithm allowlist (RS256, PS256, ES256, EdDSA) and
the same claim rules: ``iss`` exact, ``aud`` containing the audience, ``exp`` essential, ``nbf`` and
``iat`` not in the future, 30 s of leeway (``JWTClaimsRegistry`` on joserfc's side). Hypothesis builds
the tokens: valid ones signed with the dev IdP's real keys, and mutations of them (header, claims,
JSON text, signature, base64url). The properties:

- the product allows ⇒ joserfc allows, for every token, with no exception (registered header
  parameters the product never reads, ``jku``, ``x5u``, ``jwk``, ``x5c``, ``x5t``, ``x5t#S256``, ``cty``,
  and the ``jti`` claim must still have their registered form, as joserfc requires);

- joserfc allows ⇒ the product allows, except for these deliberate differences, where the product
  is stricter (each must also refuse with the code named here):

  1. duplicate member names in the header or the claims (``malformed_token``): ``json.loads`` keeps
     the last, so a header could say two things (RFC 7515 section 5.2, RFC 8725 section 3.1);
  2. JSON that is not plain UTF-8 (``malformed_token``): a BOM, UTF-16 or UTF-32, which ``json.loads``
     guesses from the bytes (RFC 8259 section 8.1: UTF-8, no BOM);
  3. an explicit ``typ`` other than ``JWT``/``at+jwt`` (``not_an_access_token``): a logout token or a
     security event token is not an access token (RFC 8725 section 3.11);
  4. a control character in ``sub`` or ``client_id`` (``control_characters``): it would reach
     ``principalId`` and, through mapping templates, request headers;
  5. no subject: neither ``sub`` nor ``client_id``/``azp``, or an empty ``sub`` (``missing_sub``);
  6. ``token_use: "id"``, an ID token (Cognito) presented as an access token (``wrong_token_use``);
  7. any ``crit`` header (``crit_not_supported``): joserfc accepts one naming a parameter it knows,
     such as ``b64``; the product supports no extension;
  8. a NumericDate integer beyond ±2**63 (``invalid_exp``/``invalid_nbf``/``invalid_iat``): joserfc
     compares Python integers of any size, so ``exp: 10**30`` never expires.

Differences once expected and not found, because joserfc 1.8 is as strict: non-canonical base64url
(its decoder checks the last character's unused bits too), padding, ``b64`` other than ``true`` (joserfc
wants ``crit`` to name it, and then reads the payload unencoded), tokens without ``kid`` (with a key
set of three keys joserfc finds no key either), ``alg: none`` and HMAC with the public key as secret
(outside the allowlist). The differential found one real leniency, since fixed: a non-boolean
``b64`` (``"false"``) was allowed by the product and refused by joserfc.

The reference is configured to the RFCs where joserfc's defaults are not: ``strict_check_header``
off (RFC 7515 section 4: header parameters that are not understood are ignored) and the header size
bound raised to the product's token bound. Times within a second of a boundary are not generated:
joserfc's clock counts whole seconds, the product's does not.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from conftest import oidc_env
from cryptography.hazmat.primitives import serialization
from encoding import b64
from event_factory import rest_token
from fault_server import Canary
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, Key, KeySet, OKPKey, RSAKey
from joserfc.jws import JWSRegistry
from outcomes import outcome_of

from idp_authorizer import handler
from idp_authorizer.tools.devidp import ALG_KEY, DevIdp

pytestmark = [pytest.mark.hostile, pytest.mark.filterwarnings("ignore::UserWarning")]

ALGORITHMS = ("RS256", "PS256", "ES256", "EdDSA")
LEEWAY = 30
MAX_TOKEN_BYTES = 10 * 1024
SCALE = float(os.environ.get("FUZZ_SCALE", "1"))
ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/pets"
B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
ABSENT: Any = ...
COUNTS: Counter[str] = Counter()


@dataclass(frozen=True)
class Deliberate:
    """A kind of token joserfc allows and the product refuses on purpose, with the codes it refuses with."""

    name: str
    codes: frozenset[str]


DUPLICATES = Deliberate("duplicate member names", frozenset({"malformed_token"}))
NOT_UTF8 = Deliberate("JSON not plain UTF-8", frozenset({"malformed_token"}))
NON_ACCESS_TYP = Deliberate("explicit non-access typ", frozenset({"not_an_access_token"}))
CONTROLS = Deliberate("control characters in sub/client_id", frozenset({"control_characters"}))
NO_SUBJECT = Deliberate("no subject", frozenset({"missing_sub"}))
ID_TOKEN = Deliberate("token_use id", frozenset({"wrong_token_use"}))
CRIT = Deliberate("crit header", frozenset({"crit_not_supported"}))
HUGE = Deliberate("NumericDate beyond 2**63", frozenset({"invalid_exp", "invalid_nbf", "invalid_iat"}))


# -- building tokens ---------------------------------------------------------------------------------


@dataclass
class Draft:
    """A token being built: dictionaries first, then JSON text edits, signing and encoding edits."""

    alg: str
    key: Key
    header: dict[str, Any]
    claims: dict[str, Any]
    now: int
    issuer: str
    audience: str
    tags: list[str] = field(default_factory=list)
    deliberate: list[Deliberate] = field(default_factory=list)
    header_edits: list[Callable[[bytes], bytes]] = field(default_factory=list)
    claims_edits: list[Callable[[bytes], bytes]] = field(default_factory=list)
    indent: int | None = None
    codecs: dict[str, str] = field(default_factory=dict)
    signing: str = "real"
    token_edits: list[Callable[[list[str]], None]] = field(default_factory=list)


Mutation = Callable[[st.DrawFn, Draft], None]
MUTATIONS: dict[str, Mutation] = {}


def mutation(name: str, kind: Deliberate | None = None) -> Callable[[Mutation], Mutation]:
    def register(apply: Mutation) -> Mutation:
        def tagged(draw: st.DrawFn, draft: Draft) -> None:
            draft.tags.append(name)
            if kind is not None:
                draft.deliberate.append(kind)
            apply(draw, draft)

        MUTATIONS[name] = tagged
        return apply

    return register


def setter(part: str, name: str, *values: Any) -> Mutation:
    def apply(draw: st.DrawFn, draft: Draft) -> None:
        target = draft.header if part == "header" else draft.claims
        value = draw(st.sampled_from(values))
        target[name] = value(draft) if callable(value) else value

    return apply


def register_setters() -> None:
    """Mutations that set one member to one of a few values (``ABSENT`` removes it)."""
    table: list[tuple[str, str, str, tuple[Any, ...], Deliberate | None]] = [
        ("alg lower-case", "header", "alg", (lambda d: d.alg.lower(),), None),
        ("alg missing or not a string", "header", "alg", (ABSENT, None, 256, ["RS256"]), None),
        ("kid unknown", "header", "kid", ("nope", "rsa-00000000", "RSA"), None),
        ("kid missing, empty or not a string", "header", "kid", (ABSENT, "", None, 1, ["k"], "k" * 300), None),
        ("typ access-token spellings", "header", "typ", ("AT+JWT", "application/at+jwt", "jwt", ABSENT), None),
        (
            "typ of another kind of token",
            "header",
            "typ",
            ("logout+jwt", "secevent+jwt", "dpop+jwt", "id_token+jwt", "application/logout+jwt", "JOSE"),
            NON_ACCESS_TYP,
        ),
        ("typ not a string", "header", "typ", (None, 1, ["at+jwt"], {"typ": "at+jwt"}), None),
        ("crit naming an absent member", "header", "crit", (["exp"], ["x-unknown"], "b64", [1]), None),
        ("crit empty", "header", "crit", ([],), CRIT),
        ("b64 true", "header", "b64", (True,), None),
        ("b64 false", "header", "b64", (False,), None),
        ("b64 not a boolean", "header", "b64", ("false", "true", 0, 1, None), None),
        ("iss wrong", "claims", "iss", ("https://evil.example", lambda d: d.issuer + "/", ABSENT, None), None),
        ("iss not a string", "claims", "iss", (lambda d: [d.issuer], 1), None),
        ("aud wrong", "claims", "aud", ("other-api", ["other-api"], [], ABSENT, None, ""), None),
        ("aud list with ours", "claims", "aud", (lambda d: ["other", d.audience],), None),
        ("aud malformed", "claims", "aud", (7, lambda d: [d.audience, 1], {"aud": "demo-api"}), None),
        ("exp past", "claims", "exp", (lambda d: d.now - 120, lambda d: d.now - 3600, 0, -1), None),
        ("exp within leeway", "claims", "exp", (lambda d: d.now - 10,), None),
        ("exp fractional", "claims", "exp", (lambda d: d.now + 300.25, lambda d: float(d.now + 60)), None),
        ("exp missing or not a number", "claims", "exp", (ABSENT, None, "9999999999", True, [1]), None),
        ("exp beyond 2**63", "claims", "exp", (10**30, 2**63, 2**64 + 5), HUGE),
        ("nbf future", "claims", "nbf", (lambda d: d.now + 3600, lambda d: d.now + 120), None),
        ("nbf within leeway", "claims", "nbf", (lambda d: d.now + 10, lambda d: d.now - 100), None),
        ("nbf not a number", "claims", "nbf", (None, "0", False), None),
        ("nbf beyond -2**63", "claims", "nbf", (-(10**30), -(2**64)), HUGE),
        ("iat future", "claims", "iat", (lambda d: d.now + 3600,), None),
        ("iat beyond -2**63", "claims", "iat", (-(10**30),), HUGE),
        ("sub not a string", "claims", "sub", (5, ["user"], None, {"id": 1}, True), None),
        (
            "sub control characters",
            "claims",
            "sub",
            ("a\r\nX-Admin: 1", "u\x00", "u\x85", "u\u2028", "\x1b[0m"),
            CONTROLS,
        ),
        ("sub empty", "claims", "sub", ("",), NO_SUBJECT),
        ("client_id control characters", "claims", "client_id", ("app\r\n", "app\x7f"), CONTROLS),
        ("sub non-ASCII", "claims", "sub", ("usér", "用户", "🙂", "a\xa0b"), None),
        ("jti not a string", "claims", "jti", (1, None, ["x"]), None),
        ("token_use id", "claims", "token_use", ("id",), ID_TOKEN),
        ("token_use access", "claims", "token_use", ("access",), None),
    ]
    for name, part, member, values, deliberate in table:
        mutation(name, deliberate)(setter(part, member, *values))


register_setters()


@mutation("sub missing, client_id present")
def _sub_missing(draw: st.DrawFn, draft: Draft) -> None:
    draft.claims["sub"] = ABSENT


@mutation("no subject at all", NO_SUBJECT)
def _no_subject(draw: st.DrawFn, draft: Draft) -> None:
    draft.claims["sub"] = draft.claims["client_id"] = ABSENT


@mutation("azp as the only subject")
def _azp_only(draw: st.DrawFn, draft: Draft) -> None:
    draft.claims["sub"] = draft.claims["client_id"] = ABSENT
    draft.claims["azp"] = "spa-client"


@mutation("key pointers")
def _pointers(draw: st.DrawFn, draft: Draft) -> None:
    """Well-formed jku/x5u/jwk/x5c/x5t: both sides ignore them (neither fetches; the canary counts)."""
    draft.header.update(
        {
            "jku": "CANARY/jwks.json",
            "x5u": "CANARY/cert.pem",
            "jwk": STRANGERS["rsa"].as_dict(private=False),
            "x5c": ["MIIB"],
            "x5t": "dGh1bWI",
        }
    )


@mutation("malformed registered header parameter")
def _malformed_registered(draw: st.DrawFn, draft: Draft) -> None:
    name, value = draw(
        st.sampled_from(
            [
                *[("jku", "not a url"), ("jku", 7), ("x5u", "ftp://x"), ("jwk", "x"), ("x5c", "MIIB")],
                *[("x5c", [1]), ("x5t", 1), ("x5t#S256", []), ("cty", 1)],
            ]
        )
    )
    draft.header[name] = value


@mutation("unknown header members")
def _unknown_header(draw: st.DrawFn, draft: Draft) -> None:
    draft.header.update({"nonce": "n", "x-tenant": [1, 2], "zip": "DEF"})


@mutation("crit b64 with b64 true", CRIT)
def _crit_b64(draw: st.DrawFn, draft: Draft) -> None:
    draft.header.update({"b64": True, "crit": ["b64"]})


@mutation("alg none")
def _alg_none(draw: st.DrawFn, draft: Draft) -> None:
    draft.header["alg"] = draw(st.sampled_from(["none", "None", "NONE"]))
    draft.signing = draw(st.sampled_from(["none", "real"]))


@mutation("alg HS256 with the public key as secret")
def _hmac(draw: st.DrawFn, draft: Draft) -> None:
    draft.header["alg"] = draft.signing = draw(st.sampled_from(["HS256", "HS384", "HS512"]))


@mutation("alg of another allowed family")
def _alg_swap(draw: st.DrawFn, draft: Draft) -> None:
    draft.header["alg"] = draw(st.sampled_from([alg for alg in ALGORITHMS if alg != draft.alg]))


@mutation("signature bit flipped")
def _flip(draw: st.DrawFn, draft: Draft) -> None:
    draft.signing = "flip"


@mutation("signature truncated or empty")
def _truncate(draw: st.DrawFn, draft: Draft) -> None:
    draft.signing = draw(st.sampled_from(["truncate", "empty"]))


@mutation("signed by a stranger's key")
def _stranger(draw: st.DrawFn, draft: Draft) -> None:
    draft.signing = "stranger"


@mutation("non-canonical last character")
def _respell(draw: st.DrawFn, draft: Draft) -> None:
    segment = draw(st.integers(0, 2))
    pick = draw(st.integers(1, 15))

    def edit(parts: list[str]) -> None:
        text = parts[segment]
        unused = {2: 16, 3: 4}.get(len(text) % 4)
        if unused is None:  # a whole last quantum: no unused bits, so append a character (length 1 mod 4)
            parts[segment] = text + "A"
            return
        value = B64URL.index(text[-1])
        base, offset = value - value % unused, pick % unused
        if base + offset == value:
            offset = (offset + 1) % unused
        parts[segment] = text[:-1] + B64URL[base + offset]  # same bytes to a lenient decoder

    draft.token_edits.append(edit)


@mutation("padding")
def _padding(draw: st.DrawFn, draft: Draft) -> None:
    segment, pad = draw(st.integers(0, 2)), draw(st.sampled_from(["=", "==", "==="]))

    def edit(parts: list[str]) -> None:
        parts[segment] += pad

    draft.token_edits.append(edit)


def prepend_member(members: dict[str, Any], name: str, value: Any) -> Callable[[bytes], bytes]:
    """A JSON edit: ``name`` with another ``value`` before the first member, so the real one comes last.

    Only if ``members`` still has ``name`` when the JSON is written (another mutation may remove it).
    """

    def edit(text: bytes) -> bytes:
        if name not in members:
            return text
        return b"{" + json.dumps(name).encode() + b":" + json.dumps(value).encode() + b"," + text[1:]

    return edit


@mutation("duplicate header member", DUPLICATES)
def _duplicate_header(draw: st.DrawFn, draft: Draft) -> None:
    name, value = draw(st.sampled_from([("alg", "none"), ("kid", "attacker"), ("typ", "logout+jwt"), ("alg", "HS256")]))
    draft.header_edits.append(prepend_member(draft.header, name, value))


@mutation("duplicate claim member", DUPLICATES)
def _duplicate_claim(draw: st.DrawFn, draft: Draft) -> None:
    name, value = draw(st.sampled_from([("iss", "https://evil.example"), ("sub", "admin"), ("exp", 1), ("aud", "x")]))
    draft.claims_edits.append(prepend_member(draft.claims, name, value))


@mutation("non-UTF-8 JSON (a BOM, UTF-16, UTF-32)", NOT_UTF8)
def _encoding(draw: st.DrawFn, draft: Draft) -> None:
    draft.codecs[draw(st.sampled_from(["header", "claims"]))] = draw(
        st.sampled_from(["utf-8-sig", "utf-16", "utf-16-le", "utf-32"])
    )


@mutation("number literals outside JSON's range")
def _literals(draw: st.DrawFn, draft: Draft) -> None:
    name, literal = draw(st.sampled_from([("exp", b"1e400"), ("exp", b"NaN"), ("nbf", b"-Infinity"), ("iat", b"NaN")]))
    draft.claims[name] = "@@literal@@"
    draft.claims_edits.append(lambda text: text.replace(b'"@@literal@@"', literal))


@mutation("whitespace in the JSON")
def _whitespace(draw: st.DrawFn, draft: Draft) -> None:
    draft.indent = draw(st.sampled_from([0, 1, 4]))


@mutation("claims not an object")
def _not_object(draw: st.DrawFn, draft: Draft) -> None:
    raw = draw(st.sampled_from([b"[]", b'"claims"', b"null", b"{", b""]))
    draft.claims_edits.append(lambda text: raw)


STRANGERS: dict[str, Key] = {
    "rsa": RSAKey.generate_key(2048, private=True),
    "ec": ECKey.generate_key("P-256", private=True),
    "okp": OKPKey.generate_key("Ed25519", private=True),
}


def public_pem(idp: DevIdp) -> bytes:
    public = idp.keys["rsa"].public_key
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)  # type: ignore[no-any-return, union-attr]


def signature_of(draft: Draft, signing_input: bytes, idp: DevIdp) -> bytes:
    if draft.signing == "none":
        return b""
    if draft.signing.startswith("HS"):
        digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[draft.signing]
        return hmac.new(public_pem(idp), signing_input, digest).digest()
    key = STRANGERS[ALG_KEY[draft.alg]] if draft.signing == "stranger" else draft.key
    signature: bytes = JWSRegistry.algorithms[draft.alg].sign(signing_input, key)
    if draft.signing == "flip":
        bit = int.from_bytes(hashlib.sha256(signing_input).digest()[:4], "big") % (8 * len(signature))
        signature = bytes(b ^ (1 << (bit % 8)) if i == bit // 8 else b for i, b in enumerate(signature))
    elif draft.signing == "truncate":
        signature = signature[:-1]
    elif draft.signing == "empty":
        signature = b""
    return signature


def encode_json(part: str, value: dict[str, Any], draft: Draft, edits: list[Callable[[bytes], bytes]]) -> bytes:
    separators = (",", ":") if draft.indent is None else None
    text = json.dumps(value, indent=draft.indent, separators=separators, ensure_ascii=False).encode()
    for edit in edits:
        text = edit(text)
    return text.decode("utf-8", "surrogatepass").encode(draft.codecs[part]) if part in draft.codecs else text


# Valid subjects: any text without the characters the product refuses (controls, U+2028/U+2029, lone surrogates).
SUBJECTS = st.sampled_from(["user-123", "auth0|5f7c8ec7c33c6c004bbafe82"]) | st.text(
    st.characters(exclude_categories=["Cc", "Cs", "Zl", "Zp"]), min_size=1, max_size=16
)
EXTRA_VALUES = (
    st.none() | st.booleans() | st.integers() | st.text(max_size=8) | st.lists(st.text(max_size=4), max_size=3)
)


@st.composite
def tokens(draw: st.DrawFn, idp: DevIdp, canary_url: str) -> tuple[str, Draft]:
    """A token, valid or mutated by zero to two mutations, and the draft that says how it was built."""
    alg = draw(st.sampled_from(ALGORITHMS))
    key = idp.keys[ALG_KEY[alg]]
    now = int(time.time())
    typ = draw(st.sampled_from(["at+jwt", "JWT", ABSENT]))
    header = {"alg": alg, "kid": key.kid} | ({} if typ is ABSENT else {"typ": typ})
    claims = {
        "iss": idp.issuer,
        "sub": draw(SUBJECTS),
        "aud": draw(st.sampled_from([idp.audience, [idp.audience], ["other-api", idp.audience]])),
        "iat": now - draw(st.integers(2, 3600)),
        "exp": now + draw(st.integers(60, 86400)),
        "scope": draw(st.sampled_from(["read", "read write", ""])),
        "client_id": "demo-client",
        "jti": uuid.uuid4().hex,
        **draw(st.dictionaries(st.sampled_from(["email", "groups", "roles", "scp", "x"]), EXTRA_VALUES, max_size=2)),
    }
    draft = Draft(alg, key, header, claims, now, idp.issuer, idp.audience)
    count = draw(st.sampled_from([1, 2, 0, 1]))  # about a quarter left valid, so both sides allow often
    names = draw(st.lists(st.sampled_from(sorted(MUTATIONS)), min_size=count, max_size=count, unique=True))
    for name in names:
        MUTATIONS[name](draw, draft)
    for part in (draft.header, draft.claims):
        for name in [name for name, value in part.items() if value is ABSENT]:
            del part[name]
        for name, value in part.items():
            if isinstance(value, str) and value.startswith("CANARY"):
                part[name] = value.replace("CANARY", canary_url)
    header_segment = b64(encode_json("header", draft.header, draft, draft.header_edits))
    claims_segment = b64(encode_json("claims", draft.claims, draft, draft.claims_edits))
    signing_input = f"{header_segment}.{claims_segment}".encode()
    parts = [header_segment, claims_segment, b64(signature_of(draft, signing_input, idp))]
    for edit in draft.token_edits:
        edit(parts)
    return ".".join(parts), draft


# -- the two judges ----------------------------------------------------------------------------------


def reference_registry() -> JWSRegistry:
    registry = JWSRegistry(algorithms=list(ALGORITHMS), strict_check_header=False)
    registry.max_header_length = MAX_TOKEN_BYTES  # the product bounds the whole token, not the header
    return registry


def joserfc_refusal(token: str, keys: KeySet, registry: JWSRegistry, idp: DevIdp) -> str | None:
    """``None`` if joserfc (decode plus JWTClaimsRegistry) allows ``token``, else its error (class: message)."""
    claims_rules = jwt.JWTClaimsRegistry(
        leeway=LEEWAY,
        iss={"essential": True, "value": idp.issuer},
        aud={"essential": True, "value": idp.audience},
        exp={"essential": True},
    )
    try:
        claims_rules.validate(jwt.decode(token, keys, registry=registry).claims)
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def product_refusal(token: str, capsys: pytest.CaptureFixture[str]) -> str | None:
    """``None`` if the real handler allows ``token`` (REST TOKEN event), else its decision code."""
    capsys.readouterr()
    got = outcome_of(lambda: handler.handler(rest_token(token, ARN), None))
    if got == "allow":
        return None
    assert got == "unauthorized", got
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"idp_authorizer.decision"' in line]
    return str(lines[-1]["code"])


@pytest.fixture
def judges(dev_idp: DevIdp, configure: Any) -> Any:
    with Canary() as canary:
        configure(
            oidc_env(
                dev_idp,
                IDP_LEEWAY_SECONDS=str(LEEWAY),
                IDP_MAX_TOKEN_BYTES=str(MAX_TOKEN_BYTES),
                IDP_TOKEN_CACHE_SECONDS="0",
                IDP_NEGATIVE_CACHE_SECONDS="0",
                IDP_JWKS_COOLDOWN_SECONDS="3600",
            )
        )
        yield dev_idp, canary, KeySet.import_key_set(dev_idp.jwks()), reference_registry()


def test_product_and_joserfc_agree_except_for_deliberate_differences(judges, capsys):
    idp, canary, keys, registry = judges

    @settings(
        max_examples=max(1, int(2000 * SCALE)),
        derandomize=True,
        database=None,
        deadline=None,
        print_blob=False,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(data=st.data())
    def agree(data: st.DataObject) -> None:
        token, draft = data.draw(tokens(idp, canary.url))
        product = product_refusal(token, capsys)
        reference = joserfc_refusal(token, keys, registry, idp)
        described = f"tags={draft.tags} product={product} joserfc={reference} header={draft.header} token={token[:100]}"
        COUNTS["examples"] += 1
        COUNTS[f"mutations: {len(draft.tags)}"] += 1
        if product is None:
            assert reference is None, f"the product allows a token joserfc refuses: {described}"
            COUNTS["allowed by both"] += 1
        elif reference is None:
            kinds = [kind for kind in draft.deliberate if product in kind.codes]
            assert kinds, f"joserfc allows a token the product refuses, not a deliberate difference: {described}"
            COUNTS[f"deliberate: {kinds[0].name}"] += 1
        else:
            COUNTS["refused by both"] += 1
        assert canary.connections == 0, "a token header made a judge connect somewhere"

    agree()
    with capsys.disabled():
        print(f"\n[joserfc differential] {dict(sorted(COUNTS.items(), key=lambda item: -item[1]))}")
    assert COUNTS["examples"] == max(1, int(2000 * SCALE))
    assert COUNTS["allowed by both"] >= COUNTS["examples"] // 10
    seen = {name.partition(": ")[2] for name in COUNTS}
    kinds = [DUPLICATES, NOT_UTF8, NON_ACCESS_TYP, CONTROLS, NO_SUBJECT, ID_TOKEN, CRIT, HUGE]
    if SCALE >= 1:
        assert {kind.name for kind in kinds} <= seen, "a documented difference was never exercised"
