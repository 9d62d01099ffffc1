"""Issue 11, items 6-8, through the real handler against the dev IdP (and a real introspection server).

6. An explicitly typed non-access token (``logout+jwt``, ``secevent+jwt``, ``dpop+jwt``, ...) is not an
   access token, even signed by the right key for the right audience (RFC 8725 section 3.11).
7. One token has one spelling: base64url whose last character carries non-zero unused bits is refused
   in every segment (RFC 4648 section 3.5), so no token has 16 accepted spellings (16 cache keys).
8. No control character reaches the backend through ``principalId``: a subject, issuer or client_id
   holding one is a 401 (mapping templates turn these values into request headers).

Each property that must hold for every input has a hypothesis test; counts are printed at the end.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import oidc_env
from encoding import b64
from event_factory import shapes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from introspection_server import BASIC, IntrospectionServer
from joserfc.jws import JWSRegistry
from outcomes import outcome_of
from tally import tally

from idp_authorizer import handler
from idp_authorizer.core.principal import has_control_characters
from idp_authorizer.jose.jwt import b64url_decode
from idp_authorizer.tools.devidp import ALG_KEY, DevIdp

pytestmark = [pytest.mark.hostile, pytest.mark.filterwarnings("ignore::UserWarning")]

API = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod"
B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
EXAMPLES = tally("token hygiene", "examples")


def quick(examples: int) -> settings:
    """The project's fuzz settings (see test_fuzz.py): deterministic, no example database."""
    return settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        print_blob=False,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


def sign(idp: DevIdp, header: dict[str, Any], claims: dict[str, Any], alg: str = "EdDSA") -> str:
    """A compact JWS over exactly this header and these claims, signed with the dev IdP's own key."""
    key = idp.keys[ALG_KEY[alg]]
    signing_input = (
        f"{b64(json.dumps({'alg': alg, 'kid': key.kid, **header}).encode())}.{b64(json.dumps(claims).encode())}"
    )
    signature = JWSRegistry.algorithms[alg].sign(signing_input.encode(), key)
    return f"{signing_input}.{b64(signature)}"


def claims_of(idp: DevIdp, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    body = {"iss": idp.issuer, "sub": "user-123", "aud": idp.audience, "iat": now, "exp": now + 300, "scope": "read"}
    body.update({"client_id": "demo-client", "jti": uuid.uuid4().hex, **changes})
    return {name: value for name, value in body.items() if value is not ...}


def events(token: str) -> dict[str, dict[str, Any]]:
    """The token as REST TOKEN (v1) and HTTP API 2.0 with simple responses."""
    return shapes(token, "rest-token", "http-v2")


REFUSED = {"rest-token": "unauthorized", "http-v2": "false"}
ALLOWED = {"rest-token": "allow", "http-v2": "allow"}


def outcomes(token: str) -> dict[str, str]:
    return {shape: outcome_of(lambda e=event: handler.handler(e, None)) for shape, event in events(token).items()}


def last_code(capsys: pytest.CaptureFixture[str]) -> str:
    """The reason code of the last decision line the handler wrote to stdout."""
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"idp_authorizer.decision"' in line]
    return str(lines[-1]["code"])


@pytest.fixture
def jwt_handler(dev_idp: DevIdp, configure: Any) -> Iterator[DevIdp]:
    """The handler against the shared dev IdP, IDP_REQUIRED_TYP unset, no verdict caches (each call decides)."""
    configure(oidc_env(dev_idp, IDP_TOKEN_CACHE_SECONDS="0", IDP_NEGATIVE_CACHE_SECONDS="0"))
    yield dev_idp


# -- 6. explicitly typed non-access tokens -------------------------------------------------------------------


ACCESS_TYPS = ["JWT", "jwt", "application/jwt", "at+jwt", "AT+JWT", "application/at+jwt", "Application/At+JWT"]
OTHER_TYPS = [
    "logout+jwt",
    "application/logout+jwt",
    "secevent+jwt",
    "dpop+jwt",
    "id_token+jwt",
    "token-introspection+jwt",
    "JOSE",
    "at+jwt ",
    "",
]


@pytest.mark.parametrize("typ", [*ACCESS_TYPS, ...])
def test_access_token_types_and_an_absent_typ_are_accepted(jwt_handler, typ):
    header = {} if typ is ... else {"typ": typ}
    assert outcomes(sign(jwt_handler, header, claims_of(jwt_handler))) == ALLOWED


@pytest.mark.parametrize("typ", OTHER_TYPS)
def test_explicit_non_access_types_are_refused_without_required_typ(jwt_handler, capsys, typ):
    # A logout token of the same IdP and audience, with sub, iss, aud, exp: everything but the type fits.
    claims = claims_of(jwt_handler, events={"http://schemas.openid.net/event/backchannel-logout": {}}, sid="s")
    assert outcomes(sign(jwt_handler, {"typ": typ}, claims)) == REFUSED
    assert last_code(capsys) == "not_an_access_token"


@pytest.mark.parametrize("typ", [None, 1, True, ["at+jwt"], {"typ": "at+jwt"}])
def test_a_typ_that_is_not_a_string_is_malformed(jwt_handler, capsys, typ):
    assert outcomes(sign(jwt_handler, {"typ": typ}, claims_of(jwt_handler))) == REFUSED
    assert last_code(capsys) == "malformed_token"


TYP_TEXT = st.one_of(
    st.text(max_size=24),
    st.builds(
        lambda prefix, name, suffix: prefix + name + suffix,
        st.sampled_from(["", "application/", "APPLICATION/", "app/"]),
        st.sampled_from(["at", "AT", "", "logout", "secevent", "dpop", "id_token", "jwt", "x"]),
        st.sampled_from(["+jwt", "+JWT", "jwt", "JWT", "+jwt\n", ""]),
    ),
)


@quick(300)
@given(typ=TYP_TEXT)
def test_any_typ_is_accepted_exactly_when_it_names_an_access_token(jwt_handler, typ):
    """The oracle is the rule as written in issue 11: ``JWT`` or ``at+jwt``, case-insensitive, ``application/`` optional."""
    normalized = typ.lower().removeprefix("application/")
    expected = ALLOWED if normalized in ("jwt", "at+jwt") else REFUSED
    assert outcomes(sign(jwt_handler, {"typ": typ}, claims_of(jwt_handler))) == expected
    EXAMPLES["typ: " + ("allowed" if expected is ALLOWED else "refused")] += 1


@pytest.mark.parametrize(("required", "typ", "allowed"), [("at+jwt", "logout+jwt", False), ("JWT", "jwt", True)])
def test_required_typ_still_means_exactly_that_type(dev_idp, configure, required, typ, allowed):
    configure(oidc_env(dev_idp, IDP_REQUIRED_TYP=required, IDP_TOKEN_CACHE_SECONDS="0"))
    assert outcomes(sign(dev_idp, {"typ": typ}, claims_of(dev_idp))) == (ALLOWED if allowed else REFUSED)
    assert outcomes(sign(dev_idp, {}, claims_of(dev_idp))) == REFUSED  # absent typ: not the required one


# -- 7. one spelling per token ----------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256", "EdDSA"])
def test_every_respelling_of_the_last_character_of_any_segment_is_refused(jwt_handler, alg):
    """Exhaustive: each of the 64 characters in the last position of each segment; only the original is allowed.

    A lenient decoder ignores the unused low bits of the last character, so 4 (2 unused bits) or 16
    (4 unused bits) characters decode to the same bytes and the signature still verifies.
    """
    token = jwt_handler.mint(alg=alg)
    assert outcomes(token) == ALLOWED
    parts = token.split(".")
    same_bytes = 0
    for index in range(3):
        for char in B64URL:
            if char == parts[index][-1]:
                continue
            respelled = parts.copy()
            respelled[index] = respelled[index][:-1] + char
            text = respelled[index]
            lenient = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            if lenient == base64.urlsafe_b64decode(parts[index] + "=" * (-len(parts[index]) % 4)):
                same_bytes += 1  # the dangerous kind: same token, another spelling
            got = outcome_of(lambda t=".".join(respelled): handler.handler(events(t)["rest-token"], None))
            assert got == "unauthorized", f"segment {index}, last character {char!r}"
    # The signature alone (256 or 64 bytes: 2 characters in the last quantum) has 15 respellings.
    assert same_bytes >= 15
    EXAMPLES[f"respellings refused ({alg})"] += same_bytes


@pytest.mark.parametrize("segment", [0, 1, 2])
def test_a_segment_of_length_one_mod_four_or_with_padding_is_refused(jwt_handler, segment):
    parts = jwt_handler.mint(alg="ES256").split(".")
    for changed in (parts[segment] + "A", parts[segment] + "=", parts[segment] + "==", "A" * (4 * 5 + 1)):
        spelled = parts.copy()
        spelled[segment] = changed
        assert outcomes(".".join(spelled)) == REFUSED, changed[-8:]


@quick(3000)
@given(text=st.text(alphabet=B64URL, max_size=11) | st.binary(max_size=9).map(b64))
def test_b64url_decode_accepts_exactly_the_canonical_spelling(text):
    """For every string over the alphabet: decoded only if it is the one encoding of its bytes."""
    try:
        decoded = b64url_decode(text.encode())
    except ValueError:
        # Refused: empty, length 1 mod 4, or a last character with non-zero unused bits.
        canonical = (
            bool(text) and len(text) % 4 != 1 and b64(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))) == text
        )
        assert not canonical, text
        EXAMPLES["base64url spellings refused"] += 1
        return
    assert b64(decoded) == text
    EXAMPLES["base64url spellings accepted"] += 1


def test_a_key_set_member_in_non_canonical_base64url_makes_only_that_key_unusable(fresh_idp, configure, capsys):
    """Decision: JWK members (``n``, ``e``, ``x``, ``y``) are read as strictly as tokens (joserfc's decoder).

    The IdP is trusted, so a respelled modulus is the same key; but one rule for every base64url the
    product reads is simpler to reason about, standard encoders never respell, and the skipped key is
    named in a warning (the keys next to it keep working).
    """
    published = fresh_idp.jwks

    def respelled() -> dict[str, Any]:
        document = published()
        rsa = next(key for key in document["keys"] if key["kty"] == "RSA")
        # 342 characters: the last carries 4 unused bits, so the next character decodes to the same modulus.
        rsa["n"] = rsa["n"][:-1] + B64URL[B64URL.index(rsa["n"][-1]) + 1]
        return document

    fresh_idp.jwks = respelled  # type: ignore[method-assign]
    configure(oidc_env(fresh_idp, IDP_TOKEN_CACHE_SECONDS="0"))
    assert outcomes(fresh_idp.mint(alg="RS256")) == REFUSED
    assert outcomes(fresh_idp.mint(alg="ES256")) == ALLOWED
    assert "invalid RSA key: a member is not canonical base64url" in capsys.readouterr().out


# -- 8. control characters in the principal ---------------------------------------------------------------------

CONTROLS = ["\r\n", "\x00", "\x85", "\u2028", "\u2029", "\t", "\x1b[31m", "\x7f", "\x9f", "\r", "\n"]
EDGES = "\x00\t\n\r\x1f \x7e\x7f\x80\x85\x9f\xa0\u2027\u2028\u2029\u202a"  # each side of each boundary
HARMLESS = ["user-123", "auth0|5f7c8ec7c33c6c004bbafe82", "é ü 漢字 🙂", "a\xa0b", "x\u2027y", "a b"]


@pytest.mark.parametrize("control", CONTROLS)
def test_a_subject_with_control_characters_is_refused(jwt_handler, capsys, control):
    token = jwt_handler.mint(alg="ES256", sub=f"user{control}X-Admin: true")
    assert outcomes(token) == REFUSED
    assert last_code(capsys) == "control_characters"


@pytest.mark.parametrize("control", ["\r\n", "\x00", "\x85", "\u2028"])
def test_a_client_id_with_control_characters_is_refused_with_or_without_sub(jwt_handler, control):
    assert outcomes(jwt_handler.mint(alg="ES256", client_id=f"app{control}")) == REFUSED
    assert outcomes(jwt_handler.mint(alg="ES256", client_id=f"app{control}", sub=None)) == REFUSED


@pytest.mark.parametrize("subject", HARMLESS)
def test_subjects_without_control_characters_still_reach_principal_id(jwt_handler, subject):
    token = jwt_handler.mint(alg="ES256", sub=subject)
    assert outcomes(token) == ALLOWED
    assert handler.handler(events(token)["rest-token"], None)["principalId"] == subject


def is_control(char: str) -> bool:
    """The definition, one character at a time (the checker the regex is compared with)."""
    return char <= "\x1f" or "\x7f" <= char <= "\x9f" or char in "\u2028\u2029"


@quick(3000)
@given(text=st.text(alphabet=st.characters(max_codepoint=0x2100) | st.sampled_from(EDGES), max_size=40))
def test_has_control_characters_matches_its_definition(text):
    found = has_control_characters(text)
    assert found == any(is_control(char) for char in text)
    EXAMPLES["texts with controls" if found else "texts without controls"] += 1


@quick(300)
@given(sub=st.text(min_size=1, max_size=24, alphabet=st.characters(exclude_categories=["Cs"])))
def test_no_principal_id_with_a_control_character_is_ever_allowed(jwt_handler, sub):
    """For any subject: refused if it holds a control character, else allowed with exactly that principalId."""
    event = events(sign(jwt_handler, {"typ": "at+jwt"}, claims_of(jwt_handler, sub=sub)))["rest-token"]
    refused = has_control_characters(sub)
    if refused:
        assert outcome_of(lambda: handler.handler(event, None)) == "unauthorized"
    else:
        assert handler.handler(event, None)["principalId"] == sub
    EXAMPLES["subjects: " + ("refused" if refused else "allowed")] += 1


@pytest.fixture
def introspection(configure: Any) -> Iterator[IntrospectionServer]:
    with IntrospectionServer() as server:
        configure(
            {
                "IDP_PROVIDER": "introspection",
                "IDP_INTROSPECTION_URL": server.url,
                "IDP_CLIENT_ID": BASIC.client_id,
                "IDP_CLIENT_SECRET": BASIC.client_secret,
                "IDP_ALLOW_LOOPBACK_HTTP": "true",
            }
        )
        yield server


@pytest.mark.parametrize("field", ["sub", "username", "client_id", "iss"])
@pytest.mark.parametrize("control", ["\r\n", "\x00", "\x85", "\u2028"])
def test_an_introspection_answer_with_control_characters_is_refused(introspection, capsys, field, control):
    answer: dict[str, Any] = {field: f"value{control}X: y"}
    if field == "username":
        answer["client_id"] = None  # the username is then the subject
    token = introspection.issue(**answer)
    assert outcomes(token) == REFUSED
    assert last_code(capsys) == "control_characters"
    plain = introspection.issue(**{field: "value"})
    assert outcomes(plain) == ALLOWED
