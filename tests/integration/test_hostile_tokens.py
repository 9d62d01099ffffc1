"""Hostile tokens through the real handler: every one refused, quickly, with no IdP call it does not need.

The tokens are built with real keys (the dev IdP's own keys where a valid signature matters, so
the claim checks are what refuses them) and raw bytes where the attack is in the encoding. Each
token goes through three shapes: REST TOKEN (v1: exactly ``Exception("Unauthorized")``), REST
REQUEST and HTTP API 2.0 with simple responses (``{"isAuthorized": False}``). After a warm-up that
loads the key set and puts unknown kids in the penalty box, the IdP sees no further request, and a
canary port named by ``jku``/``x5u``/``x5c``/``jwk`` headers sees no connection at all.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import event_factory
import pytest
from conftest import oidc_env
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.x509.oid import NameOID
from encoding import b64
from fault_server import Canary
from joserfc import jwe
from joserfc.jwk import ECKey, Key, OKPKey, RSAKey
from joserfc.jws import JWSRegistry
from outcomes import outcome_of

from idp_authorizer import handler
from idp_authorizer.tools.devidp import DevIdp

pytestmark = [pytest.mark.hostile, pytest.mark.filterwarnings("ignore::UserWarning")]

API = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod"
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
ED25519_L = 2**252 + 27742317777372353535851937790883648493
B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
PER_TOKEN_BOUND = 1.0  # seconds; a sanity bound, not a benchmark


def dumps(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def edit(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """``base`` with ``changes``; a value of ``...`` removes the member."""
    return {k: v for k, v in {**base, **changes}.items() if v is not ...}


def sign(alg: str, key: Key, signing_input: bytes) -> bytes:
    return JWSRegistry.algorithms[alg].sign(signing_input, key)  # type: ignore[no-any-return]


class Forge:
    """Builds compact tokens from raw parts, signed with real keys."""

    def __init__(self, idp: DevIdp, canary: Canary | None = None) -> None:
        self.idp = idp
        self.canary = canary
        self.rsa, self.ec, self.okp = idp.keys["rsa"], idp.keys["ec"], idp.keys["okp"]
        self.stranger_rsa = RSAKey.generate_key(2048, private=True)
        self.stranger_ec = ECKey.generate_key("P-256", private=True)
        self.stranger_okp = OKPKey.generate_key("Ed25519", private=True)

    def claims(self, **changes: Any) -> dict[str, Any]:
        now = int(time.time())
        body = {
            "iss": self.idp.issuer,
            "sub": "user-123",
            "aud": self.idp.audience,
            "iat": now,
            "exp": now + 300,
            "scope": "read",
            "client_id": "demo-client",
            "jti": uuid.uuid4().hex,
        }
        body.update(changes)
        return {k: v for k, v in body.items() if v is not ...}

    def header(self, alg: str = "RS256", **changes: Any) -> dict[str, Any]:
        kid = {"RS": self.rsa, "PS": self.rsa, "ES": self.ec, "Ed": self.okp}[alg[:2]].kid
        body = {"alg": alg, "typ": "at+jwt", "kid": kid, **changes}
        return {k: v for k, v in body.items() if v is not ...}

    def token(
        self,
        header: dict[str, Any] | bytes | None = None,
        claims: dict[str, Any] | bytes | None = None,
        *,
        alg: str = "RS256",
        key: Key | None = None,
        signature: bytes | Callable[[bytes], bytes] | None = None,
    ) -> str:
        """``header.claims.signature``; raw bytes are encoded as given; the default signature is real."""
        header = self.header(alg) if header is None else header
        claims = self.claims() if claims is None else claims
        h = b64(header if isinstance(header, bytes) else dumps(header))
        p = b64(claims if isinstance(claims, bytes) else dumps(claims))
        signing_input = f"{h}.{p}".encode()
        if signature is None:
            key = key or {"RS": self.rsa, "PS": self.rsa, "ES": self.ec, "Ed": self.okp}[alg[:2]]
            sig = sign(alg, key, signing_input)
        elif callable(signature):
            sig = signature(signing_input)
        else:
            sig = signature
        return f"{h}.{p}.{b64(sig)}"

    def raw_claims(self, text: str) -> bytes:
        """Claims as JSON text with valid iss/aud/sub and ``text`` spliced in (numbers Python cannot dump)."""
        iss, aud = json.dumps(self.idp.issuer), json.dumps(self.idp.audience)
        return f'{{"iss":{iss},"sub":"user-123","aud":{aud},"scope":"read",{text}}}'.encode()


# -- the hostile tokens -------------------------------------------------------------------------


def hostile_tokens(f: Forge) -> Iterator[tuple[str, str]]:
    """``(category, token)`` for every hostile token; each must be refused."""
    now = int(time.time())
    good = f.idp.mint()
    h, p, s = good.split(".")
    rsa_kid, ec_kid = f.rsa.kid, f.ec.kid

    # alg none, in its spellings, with and without a signature
    for spelling in ("none", "None", "NONE", "nOnE"):
        yield "alg none", f.token(edit(f.header(), alg=spelling), signature=b"")
        yield "alg none", f.token({"alg": spelling, "typ": "JWT"}, signature=b"")
        yield "alg none", f.token(edit(f.header(), alg=spelling), key=f.rsa)  # a real RS256 signature
    for alg in (
        "",
        None,
        "RS256 ",
        "rs256",
        " RS256",
        "RS256\x00",
        "RЅ256",
        ["RS256"],
        {"alg": "RS256"},
        256,
        ...,
        "HS256",
    ):
        yield "alg not allowed", f.token(edit(f.header(), alg=alg), key=f.rsa)

    # HS256 (and friends) keyed with the RSA public key in every encoding a confused verifier might use
    public = f.rsa.public_key
    secrets = {
        "PEM": public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
        "PKCS1 PEM": public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1),
        "DER": public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo),
        "JWK JSON": json.dumps(f.rsa.as_dict(private=False)).encode(),
        "JWK JSON compact": dumps(f.rsa.as_dict(private=False)),
        "modulus": public.public_numbers().n.to_bytes(256, "big"),
    }
    for digest, alg in ((hashlib.sha256, "HS256"), (hashlib.sha384, "HS384"), (hashlib.sha512, "HS512")):
        for secret in secrets.values():
            for kid in (rsa_kid, ...):
                yield (
                    "HMAC with the RSA public key",
                    f.token(
                        edit(f.header(), alg=alg, kid=kid),
                        signature=lambda data, s=secret, d=digest: hmac.new(s, data, d).digest(),
                    ),
                )

    # stripped, truncated, altered signatures; claims altered after signing
    sig = base64.urlsafe_b64decode(s + "==")
    yield "signature stripped", f"{h}.{p}."
    for cut in (1, 2, 10, len(s) // 2, len(s) - 1):
        yield "signature truncated", f"{h}.{p}.{s[:-cut]}"
    for index in (0, 100, 255):
        flipped = bytearray(sig)
        flipped[index] ^= 0x01
        yield "signature bit flipped", f"{h}.{p}.{b64(bytes(flipped))}"
    zero = b"\x00"
    yield "signature with a leading zero byte", f"{h}.{p}.{b64(zero + sig)}"
    yield "signature with a trailing byte", f"{h}.{p}.{b64(sig + zero)}"
    yield "signature zero", f"{h}.{p}.{b64(bytes(256))}"
    yield "signature one", f"{h}.{p}.{b64((1).to_bytes(256, 'big'))}"
    n = public.public_numbers().n
    yield "signature n-1", f"{h}.{p}.{b64((n - 1).to_bytes(256, 'big'))}"
    yield "signature n", f"{h}.{p}.{b64(n.to_bytes(256, 'big'))}"
    yield "signature all ones", f"{h}.{p}.{b64(bytes([255]) * 256)}"
    yield "signature of another token", f"{h}.{p}.{f.idp.mint().split('.')[2]}"
    for change in ({"scope": "admin"}, {"sub": "admin"}, {"exp": now + 10**6}):
        yield "claims altered after signing", f"{h}.{b64(dumps(f.claims(**change)))}.{s}"
    yield "header altered after signing", f"{b64(dumps(f.header('PS256')))}.{p}.{s}"

    # a signature by another key under a real kid; a real key under the wrong kid or alg
    yield "stranger key, real kid", f.token(f.header("RS256"), key=f.stranger_rsa)
    yield "stranger key, real kid", f.token(f.header("PS256"), alg="PS256", key=f.stranger_rsa)
    yield "stranger key, real kid", f.token(f.header("ES256"), alg="ES256", key=f.stranger_ec)
    yield "stranger key, real kid", f.token(f.header("EdDSA"), alg="EdDSA", key=f.stranger_okp)
    yield "real key, kid of another key", f.token(f.header("RS256", kid=ec_kid), key=f.rsa)
    yield "real key, kid of another key", f.token(f.header("ES256", kid=rsa_kid), alg="ES256", key=f.ec)
    yield "real key, kid of another key", f.token(f.header("EdDSA", kid=ec_kid), alg="EdDSA", key=f.okp)
    yield "alg swapped", f.token(f.header("PS256"), signature=lambda data: sign("RS256", f.rsa, data))
    yield "alg swapped", f.token(f.header("RS256"), signature=lambda data: sign("PS256", f.rsa, data))
    yield "alg swapped", f.token(f.header("RS384"), signature=lambda data: sign("RS256", f.rsa, data))

    # unknown kids and kids that are not strings
    for kid in (
        "unknown",
        uuid.uuid4().hex,
        rsa_kid + "x",
        rsa_kid.upper(),
        rsa_kid + " ",
        "",
        None,
        ...,
        0,
        1.5,
        True,
        [rsa_kid],
        {"kid": rsa_kid},
        "k" * 257,
        "k" * 10000,
    ):
        yield "unknown or unusable kid", f.token(f.header("RS256", kid=kid), key=f.stranger_rsa)
        yield "unknown or unusable kid", f.token(f.header("RS256", kid=kid), key=f.rsa)

    # kids carrying path traversal and injection strings
    assert f.canary is not None
    canary = f.canary.url
    for kid in (
        "../../../../../../etc/passwd",
        "/dev/null",
        "..\\..\\windows\\win.ini",
        "%2e%2e%2fetc%2fpasswd",
        "' OR '1'='1",
        '"; DROP TABLE keys; --',
        "$(curl " + canary + ")",
        "`id`",
        "${jndi:ldap://127.0.0.1/a}",
        "{{7*7}}",
        "<script>alert(1)</script>",
        "kid\x00",
        "kid\r\nX-Injected: 1",
        canary + "/jwks.json",
        "file:///etc/passwd",
        "__proto__",
        "constructor",
        "*",
        "rsa-*",
        "\u202e" + rsa_kid,
        "\ud800",
    ):
        yield "kid injection", f.token(f.header("RS256", kid=kid), key=f.stranger_rsa)
        yield "kid injection", f.token(f.header("RS256", kid=kid), key=f.rsa)

    # key-bearing headers pointing at the canary: never fetched, never trusted
    cert = self_signed_certificate(f.stranger_rsa)
    key_headers = {
        "jku": {"jku": canary + "/jwks.json"},
        "x5u": {"x5u": canary + "/cert.pem"},
        "jwk": {"jwk": f.stranger_rsa.as_dict(private=False)},
        "x5c": {"x5c": [cert]},
        "all": {
            "jku": canary + "/jwks.json",
            "x5u": canary + "/cert.pem",
            "jwk": f.stranger_rsa.as_dict(private=False),
            "x5c": [cert],
        },
    }
    for name, extra in key_headers.items():
        for kid in (rsa_kid, "attacker-key", f.stranger_rsa.thumbprint()):
            yield f"{name} header", f.token(f.header("RS256", kid=kid, **extra), key=f.stranger_rsa)
        yield f"{name} header", f.token(f.header("RS256", kid=..., **extra), key=f.stranger_rsa)

    # crit with extensions the verifier does not understand (signed by the real key)
    for crit in (["exp"], ["http://example.com/ext"], ["b64"], [], "exp", ["kid"], [1], None):
        extra = {"crit": crit, "exp": now + 300, "http://example.com/ext": True}
        yield "crit", f.token(f.header("RS256", **extra))
    yield "b64 false", f.token(f.header("RS256", b64=False))
    yield "b64 false", f.token(f.header("RS256", b64=False, crit=["b64"]))

    # JWE compact serializations (five parts), real and forged
    plaintext = dumps(f.claims())
    encryption_key = RSAKey.import_key(edit(f.rsa.as_dict(private=False), use="enc"))
    for alg, enc in (("RSA-OAEP-256", "A256GCM"), ("RSA-OAEP", "A128CBC-HS256"), ("RSA1_5", "A128GCM")):
        yield (
            "JWE",
            jwe.encrypt_compact(
                {"alg": alg, "enc": enc, "kid": rsa_kid, "cty": "JWT"}, plaintext, encryption_key, algorithms=[alg, enc]
            ),
        )
    yield "JWE", f"{b64(dumps({'alg': 'dir', 'enc': 'A256GCM'}))}..{b64(b'iv')}.{b64(plaintext)}.{b64(b'tag')}"
    yield "JWE", f"{h}.{p}.{s}.{s}.{s}"

    # the wrong number of parts
    for token in (
        f"{h}.{p}",
        f"{h}.{p}.{s}.{s}",
        f"{h}.{p}.{s}.",
        f"{h}..{s}",
        f"{h}.{p}.{s}.{s}.{s}.{s}",
        "..",
        "...",
        ".",
        "a",
        f"{h}",
        f"..{s}",
        f"{h}.{p}.{s}{'.' * 50}",
    ):
        yield "part count", token

    # characters that are not base64url, padding, invalid lengths
    yield "padding", f"{h}=.{p}.{s}"
    yield "padding", f"{h}.{p}==.{s}"
    yield "padding", f"{h}.{p}.{s}="
    yield "padding", f"{h}.{p}.{s}=="
    standard = s.replace("-", "+").replace("_", "/")
    yield "standard base64", f"{h}.{p}.{standard if standard != s else '+' + s[1:]}"
    header_b64 = base64.b64encode(dumps(f.header())).decode()
    if header_b64 != h:  # a header whose base64 has no +, / or = is spelled alike in both alphabets (random kid)
        yield "standard base64", f"{header_b64}.{p}.{s}"
    for bad in ("+", "/", "~", "%", "!", "*", "é", "\x00", "\t", " ", "\u2028", "\\", '"', ","):
        yield "non-base64url character", f"{h}.{p[:5]}{bad}{p[5:]}.{s}"
        yield "non-base64url character", f"{h}.{p}.{s[:5]}{bad}{s[5:]}"
    yield "invalid base64 length", f"{h}.{p}A.{s}"
    yield "invalid base64 length", f"{h}A.{p}.{s}"
    yield "invalid base64 length", f"{h}.{p}.{s}A"

    # iss, aud, exp wrong or absent (validly signed)
    for iss in ("https://evil.example/", f.idp.issuer + "/", f.idp.issuer.upper(), "", None, ..., [f.idp.issuer], 1):
        yield "iss", f.token(claims=f.claims(iss=iss))
    for aud in (
        "other-api",
        "",
        None,
        ...,
        [],
        ["other"],
        [f.idp.audience, 1],
        1,
        True,
        {"aud": f.idp.audience},
        f.idp.audience + " ",
        f.idp.audience.upper(),
    ):
        yield "aud", f.token(claims=f.claims(aud=aud))
    for exp in (
        ...,
        None,
        str(now + 300),
        now - 1,
        now - 0.5,
        float(now - 10),
        0,
        -1,
        -(10**12),
        True,
        False,
        [],
        {},
        "NaN",
        "Infinity",
        [now + 300],
    ):
        yield "exp", f.token(claims=f.claims(exp=exp))
    for text in (
        "1e400",
        "-1e400",
        "NaN",
        "Infinity",
        "-Infinity",
        "1" + "0" * 400,
        "-" + "1" + "0" * 400,
        "1" + "0" * 5000,
    ):
        yield "exp as an unusual number", f.token(claims=f.raw_claims(f'"exp":{text}'))
    for nbf in (now + 60, now + 10**6, str(now), True, None, [], {}, "0", float(now + 60)):
        yield "nbf", f.token(claims=f.claims(nbf=nbf))
    for text in ("1e400", "NaN", "Infinity", "1" + "0" * 400):
        yield "nbf as an unusual number", f.token(claims=f.raw_claims(f'"exp":{now + 300},"nbf":{text}'))
    for iat in (now + 3600, str(now), True, [], {"iat": now}):
        yield "iat", f.token(claims=f.claims(iat=iat))
    for text in ("1e400", "NaN", "-Infinity", "1" + "0" * 400):
        yield "iat as an unusual number", f.token(claims=f.raw_claims(f'"exp":{now + 300},"iat":{text}'))
    for sub in ("", 123, None, [], {"sub": "x"}):
        yield "sub", f.token(claims=f.claims(sub=sub, client_id=...))

    # ID tokens presented as access tokens
    yield "ID token", f.token(claims=f.claims(token_use="id"))
    yield "ID token", f.idp.mint(token_use="id")

    # JSON that is not an object, broken, deeply nested, or with duplicate member names
    for text in (
        b"[]",
        b"null",
        b'"text"',
        b"1",
        b"",
        b"{",
        b'{"a":1}x',
        b'{"a":1}{}',
        b"{'a':1}",
        b"{/*c*/}",
        b'{"a":1,}',
        b"\xef\xbb\xbf{}",
    ):
        yield "claims not a JSON object", f.token(claims=text)
        yield "header not a JSON object", f.token(header=text)
    yield "deeply nested claims", f.token(claims=b"[" * 4000 + b"]" * 4000)
    yield "deeply nested claim", f.token(claims=f.raw_claims(f'"exp":{now + 300},"x":' + "[" * 3000 + "]" * 3000))
    yield "deeply nested header", f.token(header=b'{"alg":"RS256","x":' + b"[" * 3000 + b"]" * 3000 + b"}")
    yield (
        "deeply nested objects",
        f.token(claims=f.raw_claims(f'"exp":{now + 300},"x":' + '{"a":' * 1600 + "1" + "}" * 1600)),
    )
    for text in (
        f'"exp":{now - 10},"exp":{now + 300}',
        f'"exp":{now + 300},"exp":{now - 10}',
        f'"exp":{now + 300},"aud":"other","aud":{json.dumps(f.idp.audience)}',
    ):
        yield "duplicate claim", f.token(claims=f.raw_claims(text))
    yield (
        "duplicate claim",
        f.token(
            claims=f'{{"iss":"https://evil.example/","iss":{json.dumps(f.idp.issuer)},"sub":"a","aud":"demo-api","exp":{now + 300}}}'.encode()
        ),
    )
    for text in (
        '{"alg":"none","alg":"RS256"',
        '{"alg":"RS256","alg":"none"',
        f'{{"alg":"RS256","kid":"x","kid":"{rsa_kid}"',
        f'{{"alg":"RS256","kid":"{rsa_kid}","kid":"x"',
    ):
        yield "duplicate header member", f.token(header=(text + ',"typ":"at+jwt"}').encode())

    # JSON in encodings other than UTF-8, and invalid UTF-8
    claims_text = dumps(f.claims()).decode()
    for encoding in ("utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-8-sig"):
        yield "claims not UTF-8", f.token(claims=claims_text.encode(encoding))
    header_text = dumps(f.header()).decode()
    for encoding in ("utf-16", "utf-32-be"):
        yield "header not UTF-8", f.token(header=header_text.encode(encoding))
    for insert in (b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe9", b"\x80"):
        yield "invalid UTF-8", f.token(claims=dumps(f.claims(name="x")).replace(b'"x"', b'"' + insert + b'"'))

    # ECDSA: r = s = 0, out-of-range halves, DER instead of raw, wrong lengths
    ec_token = f.idp.mint(alg="ES256")
    eh, ep, es = ec_token.split(".")
    raw = base64.urlsafe_b64decode(es + "==")
    r, s_ = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")

    def rs(r_: int, s2: int, size: int = 32) -> str:
        return f"{eh}.{ep}.{b64(r_.to_bytes(size, 'big') + s2.to_bytes(size, 'big'))}"

    yield "ECDSA r = s = 0", rs(0, 0)
    yield "ECDSA r = 0", rs(0, s_)
    yield "ECDSA s = 0", rs(r, 0)
    yield "ECDSA r = s = n", rs(P256_N, P256_N)
    yield "ECDSA r = n", rs(P256_N, s_)
    yield "ECDSA s = n", rs(r, P256_N)
    yield "ECDSA r + n", rs(r + P256_N, s_, 33)
    yield "ECDSA s + n", rs(r, s_ + P256_N, 33)
    yield "ECDSA r = s = 1", rs(1, 1)
    yield "ECDSA all ones", f"{eh}.{ep}.{b64(bytes([255]) * 64)}"
    der = encode_dss_signature(r, s_)
    yield "ECDSA DER", f"{eh}.{ep}.{b64(der)}"
    yield "ECDSA DER of (0, 0)", f"{eh}.{ep}.{b64(bytes.fromhex('3006020100020100'))}"
    yield "ECDSA DER of (0, 0)", f"{eh}.{ep}.{b64(bytes.fromhex('3006020100020100') + bytes(56))}"
    yield "ECDSA DER padded to 64", f"{eh}.{ep}.{b64(der.ljust(64, zero))}"
    yield "ECDSA short", f"{eh}.{ep}.{b64(raw[:63])}"
    yield "ECDSA long", f"{eh}.{ep}.{b64(raw + zero)}"
    yield "ECDSA empty", f"{eh}.{ep}."
    yield "ECDSA halves swapped", f"{eh}.{ep}.{b64(raw[32:] + raw[:32])}"
    yield "ECDSA from another key", f.token(f.header("ES256"), alg="ES256", key=f.stranger_ec)
    assert decode_dss_signature(der) == (r, s_)

    # EdDSA: zero signature, non-canonical S (S + L)
    ed_token = f.idp.mint(alg="EdDSA")
    dh, dp, ds = ed_token.split(".")
    ed_sig = base64.urlsafe_b64decode(ds + "==")
    big_s = int.from_bytes(ed_sig[32:], "little") + ED25519_L
    yield "EdDSA S + L", f"{dh}.{dp}.{b64(ed_sig[:32] + big_s.to_bytes(32, 'little'))}"
    yield "EdDSA zero", f"{dh}.{dp}.{b64(bytes(64))}"
    yield "EdDSA short", f"{dh}.{dp}.{b64(ed_sig[:63])}"

    # issue 11 and the joserfc differential: signed by the real key, refused for their typ, encoding, identity, b64
    for typ in ("logout+jwt", "secevent+jwt", "dpop+jwt", "id_token+jwt", "application/logout+jwt", None, 1, [""]):
        yield "typ of another kind of token", f.token(f.header("RS256", typ=typ))
    unused = {2: 16, 3: 4}[len(s) % 4]
    base = B64URL.index(s[-1])
    for value in range(base + 1, base + unused):
        yield "signature respelled (non-canonical last character)", f"{h}.{p}.{s[:-1]}{B64URL[value]}"
    for sub in ("user\r\nX-Admin: true", "user\x00", "user\x85", "user\u2028", "\x1b[2J"):
        yield "control characters in sub", f.token(claims=f.claims(sub=sub))
        yield "control characters in client_id", f.token(claims=f.claims(sub=..., client_id=sub))
    for b64_value in ("false", "true", 0, 1, None, []):
        yield "b64 not a boolean", f.token(f.header("RS256", b64=b64_value))

    # a long but admissible token made of junk
    yield "junk", "A" * 9000
    yield "junk", ".".join(["A" * 3000] * 3)


def self_signed_certificate(key: RSAKey) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "attacker")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key)
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key.private_key, hashes.SHA256())
    )
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def shapes(token: str) -> dict[str, dict[str, Any]]:
    return event_factory.shapes(token, "rest-token", "rest-request", "http-v2")


EXPECTED = {"rest-token": "unauthorized", "rest-request": "unauthorized", "http-v2": "false"}


@pytest.fixture
def hostile_setup(fresh_idp, configure):
    """The handler against a fresh dev IdP, warmed up: key set loaded, unknown kids in the penalty box."""
    with Canary() as canary:
        configure(
            oidc_env(
                fresh_idp,
                IDP_JWKS_COOLDOWN_SECONDS="3600",
                IDP_NEGATIVE_CACHE_SECONDS="0",
                IDP_TOKEN_CACHE_SECONDS="0",
            )
        )
        forge = Forge(fresh_idp, canary)
        assert outcome_of(lambda: handler.handler(shapes(fresh_idp.mint())["rest-token"])) == "allow"
        stranger = forge.token(forge.header("RS256", kid="warm-up-unknown-kid"), key=forge.stranger_rsa)
        assert outcome_of(lambda: handler.handler(shapes(stranger)["rest-token"])) == "unauthorized"
        yield forge


def test_hostile_tokens_are_all_refused_quickly_without_idp_calls(hostile_setup, fresh_idp, capsys):
    forge: Forge = hostile_setup
    hits = dict(fresh_idp.hits)
    assert hits == {"/.well-known/openid-configuration": 1, "/.well-known/jwks.json": 2}

    # The control group: the same handler allows genuine tokens, also with key headers it ignores.
    controls = [fresh_idp.mint(alg=alg) for alg in ("RS256", "PS256", "ES256", "EdDSA")]
    controls.append(forge.token(forge.header("RS256", jku=forge.canary.url, x5u=forge.canary.url)))
    controls.append(forge.token(claims=forge.claims(exp=time.time() + 300.5)))
    for token in controls:
        for shape, event in shapes(token).items():
            assert outcome_of(lambda e=event: handler.handler(e)) == "allow", shape

    tried: Counter[str] = Counter()
    failures: list[str] = []
    slowest = 0.0
    tokens = list({token: (category, token) for category, token in hostile_tokens(forge)}.values())
    for category, token in tokens:
        tried[category] += 1
        for shape, event in shapes(token).items():
            started = time.perf_counter()
            try:
                got = outcome_of(lambda e=event: handler.handler(e))
            except AssertionError as exc:
                got = f"crash: {exc}"
            elapsed = time.perf_counter() - started
            slowest = max(slowest, elapsed)
            if got != EXPECTED[shape] or elapsed > PER_TOKEN_BOUND:
                failures.append(f"{category} [{shape}]: {got} in {elapsed:.3f}s: {token[:80]}")
    assert not failures, "\n".join(failures)
    assert dict(fresh_idp.hits) == hits, "a hostile token caused an IdP request"
    assert forge.canary.connections == 0, "a token header made the authorizer connect somewhere"
    with capsys.disabled():
        print(
            f"\n[hostile tokens] {len(tokens)} tried in {len(tried)} categories, {len(tokens)} refused "
            f"({3 * len(tokens)} handler calls over 3 event shapes); slowest {slowest * 1000:.1f} ms; "
            f"IdP hits after warm-up: 0; canary connections: 0"
        )


def test_oversized_tokens_are_refused_before_any_parsing(fresh_idp, configure, monkeypatch):
    import providers.jwks
    from idp_authorizer.aws import router
    from idp_authorizer.core import decision
    from idp_authorizer.jose import jwt

    configure(oidc_env(fresh_idp, IDP_MAX_TOKEN_BYTES="2048"))
    assert outcome_of(lambda: handler.handler(shapes(fresh_idp.mint())["rest-token"])) == "allow"
    hits = dict(fresh_idp.hits)
    calls: Counter[str] = Counter()

    def spy(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls[name] += 1
            return real(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(providers.jwks, "decompose", spy("decompose", jwt.decompose))
    monkeypatch.setattr(router, "decompose", spy("decompose", jwt.decompose))
    monkeypatch.setattr(decision, "check_token_syntax", spy("syntax", decision.check_token_syntax))
    padded = fresh_idp.mint(padding="x" * 2000)  # validly signed, just too large
    oversized = [padded, "A" * 2049, "A" * 10241, "A" * 16385, "A" * (1 << 20), "A.B." + "C" * (10 << 20)]
    for token in oversized:
        for shape, event in shapes(token).items():
            started = time.perf_counter()
            assert outcome_of(lambda e=event: handler.handler(e)) == EXPECTED[shape]
            assert time.perf_counter() - started < PER_TOKEN_BOUND
    assert calls == Counter(), "an oversized token was parsed"
    assert dict(fresh_idp.hits) == hits


def test_default_maximum_fits_api_gateway_header_limit(fresh_idp, configure):
    configure(oidc_env(fresh_idp))
    fits = fresh_idp.mint(padding="x" * 7000)
    assert 9000 < len(fits) <= 10240
    assert outcome_of(lambda: handler.handler(shapes(fits)["rest-token"])) == "allow"
    too_large = fresh_idp.mint(padding="x" * 8000)
    assert len(too_large) > 10240
    assert outcome_of(lambda: handler.handler(shapes(too_large)["rest-token"])) == "unauthorized"


def test_deep_nesting_at_the_largest_admissible_size_does_not_escape(fresh_idp, configure):
    """RecursionError inside json.loads must become a refusal, at every depth the size limit admits."""
    configure(oidc_env(fresh_idp, IDP_MAX_TOKEN_BYTES="16384"))
    forge = Forge(fresh_idp)
    for depth in (500, 1000, 2000, 5000):
        for claims in (
            b"[" * depth + b"]" * depth,
            forge.raw_claims(f'"exp":{int(time.time()) + 300},"x":' + "[" * depth + "]" * depth),
        ):
            token = forge.token(claims=claims)
            if len(token) > 16384:
                continue
            got = outcome_of(lambda t=token: handler.handler(shapes(t)["rest-token"]))
            # A nested claim the parser can read leaves an otherwise valid token valid.
            assert got in ("unauthorized", "allow"), got
            if claims.startswith(b"["):
                assert got == "unauthorized"


@pytest.mark.parametrize(
    ("typ", "allowed"),
    [
        ("at+jwt", True),
        ("AT+JWT", True),
        ("application/at+jwt", True),
        ("JWT", False),
        ("jwt", False),
        ("application/jwt", False),
        ("id_token+jwt", False),
        ("at+jwt ", False),
        (["at+jwt"], False),
        (None, False),
        (..., False),
    ],
)
def test_required_typ_refuses_id_tokens_presented_as_access_tokens(fresh_idp, configure, typ, allowed):
    configure(oidc_env(fresh_idp, IDP_REQUIRED_TYP="at+jwt"))
    forge = Forge(fresh_idp)
    token = forge.token(forge.header("RS256", typ=typ))
    expected = {shape: "allow" for shape in EXPECTED} if allowed else EXPECTED
    for shape, event in shapes(token).items():
        assert outcome_of(lambda e=event: handler.handler(e)) == expected[shape], shape
    # An ID token shape (typ JWT, nonce, at_hash, token_use id) is refused whatever else it carries.
    id_token = forge.token(
        forge.header("RS256", typ="JWT"), claims=forge.claims(nonce="n", at_hash="x", token_use="id")
    )
    assert outcome_of(lambda: handler.handler(shapes(id_token)["rest-token"])) == "unauthorized"
