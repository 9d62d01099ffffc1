"""DPoP proofs (RFC 9449 section 4.3): each check refuses with its code, and a property test that a proof
is accepted only when every check holds. Pure: an injected clock, keys made here."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idp_authorizer.core.binding import DPOP_ALGORITHMS as DEFAULT_ALGORITHMS
from idp_authorizer.core.errors import InvalidToken, Reason
from idp_authorizer.jose.dpop import (
    Proof,
    check_proof,
    jwk_thumbprint,
    normalized_url,
)
from idp_authorizer.tools.dpop_client import DpopKey

NOW = 1_800_000_000.0
URL = "https://api.example.com/prod/pets"
TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln"  # any access token: only its hash is checked
KEYS = {alg: DpopKey(alg) for alg in DEFAULT_ALGORITHMS}


def check(proof: str, *, method: str = "GET", url: str = URL, token: str = TOKEN, now: float = NOW) -> Proof:
    return check_proof(
        proof, method=method, url=url, access_token=token, algorithms=DEFAULT_ALGORITHMS, max_age=60, leeway=5, now=now
    )


def refused(proof: str, **kwargs: object) -> Reason:
    with pytest.raises(InvalidToken) as caught:
        check(proof, **kwargs)  # type: ignore[arg-type]
    return caught.value.code


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.mark.parametrize("alg", DEFAULT_ALGORITHMS)
def test_a_valid_proof_gives_its_key_thumbprint_and_jti(alg: str):
    key = KEYS[alg]
    proof = check(key.proof("GET", URL, TOKEN, iat=NOW, jti="j-1"))
    assert proof == Proof(key.jkt, "j-1", NOW)


def test_rfc_7638_thumbprint_example():
    # RFC 7638 section 3.1: the RSA key of RFC 7517 appendix A.1 has this thumbprint.
    jwk = {
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3"
        "oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6"
        "qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJz"
        "KnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    assert jwk_thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


@pytest.mark.parametrize(
    ("proof", "kwargs", "code"),
    [
        (KEYS["ES256"].proof("POST", URL, TOKEN, iat=NOW), {}, Reason.DPOP_HTM_MISMATCH),
        (KEYS["ES256"].proof("GET", "https://api.example.com/prod/cats", TOKEN, iat=NOW), {}, Reason.DPOP_HTU_MISMATCH),
        (KEYS["ES256"].proof("GET", "http://api.example.com/prod/pets", TOKEN, iat=NOW), {}, Reason.DPOP_HTU_MISMATCH),
        (
            KEYS["ES256"].proof("GET", "https://evil.example.com/prod/pets", TOKEN, iat=NOW),
            {},
            Reason.DPOP_HTU_MISMATCH,
        ),
        (KEYS["ES256"].proof("GET", "/prod/pets", TOKEN, iat=NOW), {}, Reason.DPOP_HTU_MISMATCH),
        (KEYS["ES256"].proof("GET", URL, TOKEN, iat=NOW - 66), {}, Reason.DPOP_PROOF_EXPIRED),
        (KEYS["ES256"].proof("GET", URL, TOKEN, iat=NOW + 6), {}, Reason.DPOP_ISSUED_IN_FUTURE),
        (KEYS["ES256"].proof("GET", URL, TOKEN, iat=NOW, ath=None), {}, Reason.DPOP_ATH_MISMATCH),
        (KEYS["ES256"].proof("GET", URL, "another-token", iat=NOW), {}, Reason.DPOP_ATH_MISMATCH),
        (KEYS["ES256"].proof("GET", URL, TOKEN, iat=NOW).rpartition(".")[0], {}, Reason.DPOP_PROOF_INVALID),
        (KEYS["ES256"].proof("GET", URL, TOKEN, iat=NOW, header={"typ": "JWT"}), {}, Reason.DPOP_WRONG_TYP),
        (KEYS["ES256"].proof("GET", URL, TOKEN, iat=NOW, header={"typ": None}), {}, Reason.DPOP_WRONG_TYP),
        (KEYS["ES256"].proof("GET", URL, TOKEN, iat=NOW, header={"jwk": None}), {}, Reason.DPOP_JWK_INVALID),
        (KEYS["ES256"].proof("GET", URL, TOKEN, iat="soon"), {}, Reason.DPOP_PROOF_INVALID),
        ("not-a-jws", {}, Reason.DPOP_PROOF_INVALID),
    ],
)
def test_each_check_refuses_with_its_code(proof: str, kwargs: dict[str, object], code: Reason):
    assert refused(proof, **kwargs) == code


def test_a_missing_jti_is_refused():
    key = KEYS["ES256"]
    proof = key.proof("GET", URL, TOKEN, iat=NOW, jti="x")
    header, body, _ = proof.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    del claims["jti"]
    from joserfc import jws

    bare = jws.serialize_compact(json.loads(base64.urlsafe_b64decode(header + "==")), json.dumps(claims), key.key)
    assert refused(bare) == Reason.DPOP_PROOF_INVALID


def test_a_private_key_in_the_header_is_refused():
    key = KEYS["ES256"]
    private = dict(key.key.as_dict(private=True))
    assert refused(key.proof("GET", URL, TOKEN, iat=NOW, header={"jwk": private})) == Reason.DPOP_PRIVATE_KEY


def test_a_proof_signed_by_another_key_than_its_jwk_is_refused():
    signer, named = KEYS["ES256"], DpopKey("ES256")
    proof = signer.proof("GET", URL, TOKEN, iat=NOW, header={"jwk": named.public_jwk})
    assert refused(proof) == Reason.DPOP_BAD_SIGNATURE


@pytest.mark.parametrize("alg", ["none", "HS256", "ES512", None])
def test_alg_none_hmac_and_unlisted_algorithms_are_refused(alg: str | None):
    header = b64(json.dumps({"typ": "dpop+jwt", "alg": alg, "jwk": KEYS["ES256"].public_jwk}).encode())
    body = b64(json.dumps({"htm": "GET", "htu": URL, "iat": NOW, "jti": "j"}).encode())
    # An HMAC "signature" keyed with the public JWK's text: the classic confusion, which must not verify.
    mac = hmac.new(json.dumps(KEYS["ES256"].public_jwk).encode(), f"{header}.{body}".encode(), hashlib.sha256)
    signature = "" if alg == "none" else b64(mac.digest())
    assert refused(f"{header}.{body}.{signature}") in (Reason.DPOP_ALG_NOT_ALLOWED, Reason.DPOP_PROOF_INVALID)
    if alg != "none":
        assert refused(f"{header}.{body}.{signature}") == Reason.DPOP_ALG_NOT_ALLOWED


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://API.example.com/prod/pets", URL),
        ("https://api.example.com:443/prod/pets", URL),
        ("https://api.example.com/prod/pets?x=1#f", URL),
        ("HTTPS://api.example.com/", "https://api.example.com"),
    ],
)
def test_htu_is_compared_after_normalization(a: str, b: str):
    assert normalized_url(a) == normalized_url(b)


@pytest.mark.parametrize("url", ["https://api.example.com/Prod/pets", "https://api.example.com:8443/prod/pets"])
def test_htu_keeps_path_case_and_other_ports(url: str):
    assert normalized_url(url) != normalized_url(URL)


# -- the property: accepted exactly when every check holds ------------------------------------

FAULTS = ("htm", "htu", "iat_old", "iat_future", "ath", "typ", "alg", "jwk", "private", "signature")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    alg=st.sampled_from(DEFAULT_ALGORITHMS),
    faults=st.sets(st.sampled_from(FAULTS)),
    age=st.floats(min_value=-5, max_value=65),
)
def test_a_proof_is_accepted_only_when_every_check_holds(alg: str, faults: set[str], age: float):
    key, other = KEYS[alg], KEYS["ES256" if alg != "ES256" else "EdDSA"]
    iat = NOW - age
    if "iat_old" in faults:
        iat = NOW - 66 - abs(age)
    if "iat_future" in faults:
        iat = NOW + 6 + abs(age)
    header: dict[str, object] = {}
    if "typ" in faults:
        header["typ"] = "jwt"
    if "jwk" in faults:
        header["jwk"] = other.public_jwk
    if "private" in faults:
        header["jwk"] = dict(key.key.as_dict(private=True))
    proof = key.proof(
        "POST" if "htm" in faults else "GET",
        URL + "/x" if "htu" in faults else URL,
        "other" if "ath" in faults else TOKEN,
        iat=iat,
        header=header,
    )
    if "alg" in faults:
        head, body, sig = proof.split(".")
        unverified = json.loads(base64.urlsafe_b64decode(head + "=="))
        proof = ".".join((b64(json.dumps({**unverified, "alg": "HS256"}).encode()), body, sig))
    if "signature" in faults:
        head, body, sig = proof.split(".")
        proof = f"{head}.{body}.{sig[:-4]}{'AAAA' if not sig.endswith('AAAA') else 'BBBB'}"
    if faults:
        with pytest.raises(InvalidToken):
            check(proof)
    else:
        assert check(proof).jkt == key.jkt


@pytest.mark.parametrize("x", ["\\ud800", "\\u00e9" * 43, 7])
def test_a_jwk_member_that_is_no_base64url_string_is_refused_not_raised(x: object):
    jwk = json.dumps({"kty": "OKP", "crv": "Ed25519", "x": "PLACEHOLDER"}).replace(
        '"PLACEHOLDER"', json.dumps(x) if not isinstance(x, str) else f'"{x}"'
    )
    header = b64(('{"typ":"dpop+jwt","alg":"EdDSA","jwk":' + jwk + "}").encode())
    body = b64(json.dumps({"htm": "GET", "htu": URL, "iat": NOW, "jti": "j"}).encode())
    assert refused(f"{header}.{body}.{b64(b'0' * 64)}") == Reason.DPOP_JWK_INVALID
