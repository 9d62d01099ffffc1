"""Property-based fuzzing of the real handler with hypothesis: events, token bytes, and signed JWTs.

The only outcomes the handler may produce are an allow (for the valid tokens injected here, and only
those), an explicit Deny policy, the deliberate ``Exception("Unauthorized")`` and, for HTTP API 2.0
simple responses, ``{"isAuthorized": False}``; :func:`fault_server.outcome_of` fails on anything else.

Deterministic for CI: ``derandomize=True`` and no example database. ``FUZZ_SCALE`` (environment)
multiplies the example counts for a longer local run.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import time
import uuid
from typing import Any

import event_factory
import pytest
from conftest import oidc_env
from encoding import b64
from fault_server import Canary
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from joserfc.jwk import RSAKey
from joserfc.jws import JWSRegistry
from outcomes import outcome_of
from tally import tally

from idp_authorizer import handler
from idp_authorizer.core.errors import InvalidToken
from idp_authorizer.core.events import TokenSource, parse_event
from idp_authorizer.tools.devidp import DevIdp

pytestmark = [pytest.mark.hostile, pytest.mark.filterwarnings("ignore::UserWarning")]

SCALE = float(os.environ.get("FUZZ_SCALE", "1"))
EXAMPLES = tally("fuzz", "examples through the real handler")


def fuzz(examples: int) -> settings:
    return settings(
        max_examples=max(1, int(examples * SCALE)),
        derandomize=True,
        database=None,
        deadline=None,
        print_blob=False,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    )


API = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod"
ROUTES = json.dumps({"GET /pets": ["read"], "DELETE /pets": ["admin"]})
SOURCES = "header:Authorization,query:access_token,cookie:tok"
PARSED_SOURCES = tuple(TokenSource.parse(spec) for spec in SOURCES.split(","))
B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
COMPACT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


def canonical(token: object) -> tuple[bytes, ...] | None:
    """The decoded parts of a compact JWS, so two spellings of one token compare equal."""
    if not isinstance(token, str) or COMPACT.fullmatch(token) is None:
        return None
    try:
        return tuple(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)) for part in token.split("."))
    except ValueError:
        return None


class Pool:
    """Valid and invalid tokens minted by the dev IdP for one test."""

    def __init__(self, idp: DevIdp) -> None:
        self.idp = idp
        self.valid = [
            idp.mint(alg=alg, scope=scope) for alg in ("RS256", "ES256", "EdDSA") for scope in ("read", "admin")
        ]
        self.invalid = [
            idp.mint(ttl=-10),
            idp.mint(aud="other"),
            idp.mint(iss="https://evil.example"),
            idp.mint(key=RSAKey.generate_key(2048, private=True, parameters={"kid": idp.keys["rsa"].kid})),
            self.valid[0][:-4] + "AAAA",
            "not-a-jwt",
        ]
        self.canonical_valid = {canonical(token) for token in self.valid}
        self.events: st.SearchStrategy[object] | None = None
        self.token_bytes: st.SearchStrategy[str] | None = None

    def is_valid(self, token: object) -> bool:
        return canonical(token) in self.canonical_valid


@pytest.fixture
def pool(dev_idp, configure) -> Pool:
    configure(
        oidc_env(
            dev_idp,
            IDP_ROUTES=ROUTES,
            IDP_TOKEN_SOURCES=SOURCES,
            IDP_JWKS_COOLDOWN_SECONDS="3600",
            IDP_NEGATIVE_CACHE_SECONDS="0",
        )
    )
    tokens = Pool(dev_idp)
    for token in tokens.valid:  # warm the key set
        assert outcome_of(lambda t=token: handler.handler(rest_request({"Authorization": f"Bearer {t}"}))) in (
            "allow",
            "deny",
        )
    return tokens


def rest_request(headers: object, **extra: Any) -> dict[str, Any]:
    return {
        "type": "REQUEST",
        "methodArn": f"{API}/GET/pets",
        "resource": "/pets",
        "httpMethod": "GET",
        "headers": headers,
        **extra,
    }


# -- strategies -------------------------------------------------------------------------------------

MISSING = object()
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=16),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=8,
)
ARNS = st.one_of(
    st.sampled_from([f"{API}/GET/pets", f"{API}/DELETE/pets", f"{API}/GET/pets/1", f"{API}/$connect", f"{API}/*/*"]),
    st.builds(lambda verb, path: f"{API}/{verb}/{path}", st.text(max_size=8), st.text(max_size=12)),
    st.text(max_size=40),
    JSON,
)


def token_text(pool: Pool) -> st.SearchStrategy[Any]:
    valid_or_not = st.sampled_from(pool.valid + pool.invalid)
    return st.one_of(
        valid_or_not,
        valid_or_not,
        st.text(alphabet=B64URL + ".", max_size=120),
        st.text(max_size=40),
        st.builds(lambda t, junk: t + junk, valid_or_not, st.text(max_size=4)),
        JSON,
    )


def authorization(pool: Pool) -> st.SearchStrategy[Any]:
    prefixes = st.sampled_from(
        ["Bearer ", "bearer ", "BEARER ", "", "Bearer  ", " Bearer ", "Basic ", "Bearer\t", "Token "]
    )
    return st.one_of(st.builds(lambda p, t: p + t if isinstance(t, str) else t, prefixes, token_text(pool)), JSON)


def field(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the right kind of value, sometimes junk, sometimes missing."""
    return st.one_of(value, value, value, JSON, st.just(MISSING))


def without_missing(event: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in event.items() if value is not MISSING}


def events(pool: Pool) -> st.SearchStrategy[object]:
    """Events of every shape, each field mostly right, sometimes junk, sometimes missing (built once per pool)."""
    if pool.events is not None:
        return pool.events
    auth = authorization(pool)
    tokens = token_text(pool)
    header_name = st.sampled_from(["Authorization", "authorization", "AUTHORIZATION", "X-Auth"])
    headers = st.dictionaries(header_name, auth, max_size=3)
    multi = st.dictionaries(header_name, st.lists(auth, max_size=3), max_size=2)
    query = st.dictionaries(st.sampled_from(["access_token", "token", "Access_Token"]), tokens, max_size=2)
    multi_query = st.dictionaries(st.just("access_token"), st.lists(tokens, max_size=3))
    method = st.sampled_from(["GET", "DELETE", "POST", "get", ""]) | st.text(max_size=6)
    route_key = st.builds(lambda m, p: f"{m} {p}", method, st.sampled_from(["/pets", "/pets/1", "/x"]))
    cookies = st.lists(st.builds(lambda t: f"tok={t}", tokens) | st.text(max_size=10), max_size=3)
    rest_token = st.fixed_dictionaries(
        {"type": field(st.just("TOKEN")), "authorizationToken": field(auth), "methodArn": field(ARNS)}
    )
    http_v2 = st.fixed_dictionaries(
        {
            "version": field(st.just("2.0")),
            "type": field(st.just("REQUEST")),
            "routeArn": field(ARNS),
            "routeKey": field(route_key),
            "headers": field(headers),
            "queryStringParameters": field(query),
            "cookies": field(cookies),
            "identitySource": field(st.lists(auth, max_size=2)),
        }
    )
    request_fields = {
        "type": field(st.just("REQUEST")),
        "methodArn": field(ARNS),
        "resource": field(st.sampled_from(["/pets", "/pets/{id}", "/x"])),
        "httpMethod": field(method),
        "headers": field(headers),
        "multiValueHeaders": field(multi),
        "queryStringParameters": field(query),
        "multiValueQueryStringParameters": field(multi_query),
    }
    rest_request = st.fixed_dictionaries(request_fields)
    http_v1 = st.fixed_dictionaries({**request_fields, "version": field(st.just("1.0"))})
    websocket = st.fixed_dictionaries(
        {**request_fields, "requestContext": field(st.just({"eventType": "CONNECT", "routeKey": "$connect"}))}
    )
    junk = JSON | st.dictionaries(st.sampled_from(["type", "version", "methodArn", "routeArn", "headers"]), JSON)
    shaped = st.one_of(rest_token, rest_request, http_v1, http_v2, websocket).map(without_missing)
    pool.events = st.one_of(shaped, shaped, shaped, junk)
    return pool.events


def check_allow_is_for_a_valid_token(pool: Pool, event: object, got: str) -> None:
    if got != "allow":
        return
    request = parse_event(event, PARSED_SOURCES)  # the product's own extraction: must not raise
    assert pool.is_valid(request.token), f"allowed a token that is not one of the valid ones: {event!r:.300}"


# -- 1. events ----------------------------------------------------------------------------------------


@fuzz(2500)
@given(data=st.data())
def test_fuzzed_events_yield_only_contract_outcomes(pool, data):
    event = data.draw(events(pool))
    got = outcome_of(lambda: handler.handler(event, None))
    check_allow_is_for_a_valid_token(pool, event, got)
    EXAMPLES["events"] += 1


# -- 2. token bytes -------------------------------------------------------------------------------------


def mutate(token: str, op: str, position: int, text: str) -> str:
    i = position % (len(token) + 1)
    if op == "insert":
        return token[:i] + text + token[i:]
    if op == "delete":
        return token[:i] + token[i + len(text) + 1 :]
    if op == "replace":
        return token[:i] + text + token[i + len(text) :]
    if op == "truncate":
        return token[:i]
    parts = token.split(".")
    if op == "swap" and len(parts) == 3:
        return ".".join([parts[1], parts[0], parts[2]])
    if op == "duplicate":
        return token + "." + parts[position % len(parts)]
    return token


TOKEN_KINDS = st.sampled_from(["binary", "alphabet", "parts", "json", "mutated", "mutated", "mutated"])
BINARY = st.binary(max_size=300)
ALPHABET = st.text(alphabet=B64URL + ".=+/~", max_size=400)
PART = st.binary(max_size=120)
PART_COUNT = st.integers(1, 6)
SIGNATURE = st.binary(max_size=80)
MUTATIONS = st.lists(
    st.tuples(
        st.sampled_from(["insert", "delete", "replace", "truncate", "swap", "duplicate"]),
        st.integers(0, 10_000),
        st.text(alphabet=B64URL + ".=", min_size=1, max_size=3),
    ),
    min_size=1,
    max_size=3,
)


@st.composite
def token_bytes(draw: st.DrawFn, valid: st.SearchStrategy[str]) -> str:
    kind = draw(TOKEN_KINDS)
    if kind == "binary":
        return draw(BINARY).decode("latin-1")
    if kind == "alphabet":
        return draw(ALPHABET)
    if kind == "parts":
        return ".".join(b64(draw(PART)) for _ in range(draw(PART_COUNT)))
    if kind == "json":
        header, claims = draw(JSON), draw(JSON)
        return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}.{b64(draw(SIGNATURE))}"
    token = draw(valid)
    for op, position, text in draw(MUTATIONS):
        token = mutate(token, op, position, text)
    return token


SHAPES = st.sampled_from(["rest-token", "rest-request", "http-v2"])


@fuzz(3000)
@given(data=st.data())
def test_fuzzed_token_bytes_are_refused_unless_they_are_a_valid_token(pool, data):
    if pool.token_bytes is None:
        pool.token_bytes = token_bytes(st.sampled_from(pool.valid))
    token = data.draw(pool.token_bytes)
    shape = data.draw(SHAPES)
    if shape == "rest-token":
        event: dict[str, Any] = event_factory.rest_token(token)
    elif shape == "rest-request":
        event = event_factory.rest_request(token)
    else:
        event = event_factory.http_v2(token)
    got = outcome_of(lambda: handler.handler(event, None))
    if pool.is_valid(token):
        # A mutation may land on another spelling of a valid token (unused bits of the last base64url
        # character): still the same signed bytes, so an allow is right.
        assert got in ("allow", "deny", "false") or "\t" in token or " " in token
    else:
        assert got in ("unauthorized", "false"), f"{got} for {token!r:.200}"
    EXAMPLES["token bytes"] += 1


# -- 3. signed JWTs with an exact oracle ------------------------------------------------------------------

RESERVED_HEADER = {"alg", "kid", "crit", "b64", "typ"}
RESERVED_CLAIMS = {
    "iss",
    "aud",
    "exp",
    "nbf",
    "iat",
    "sub",
    "token_use",
    "client_id",
    "azp",
    "scope",
    "scp",
    "permissions",
}
NOW = int(time.time())
BAD_CLAIMS: dict[str, Any] = {
    "exp past": {"exp": NOW - 60},
    "exp string": {"exp": str(NOW + 300)},
    "exp missing": {"exp": ...},
    "exp null": {"exp": None},
    "exp bool": {"exp": True},
    "exp list": {"exp": [NOW + 300]},
    "nbf future": {"nbf": NOW + 3600},
    "nbf string": {"nbf": "0"},
    "nbf null": {"nbf": None},
    "iat future": {"iat": NOW + 3600},
    "iat string": {"iat": "now"},
    "iss wrong": {"iss": "https://evil.example"},
    "iss missing": {"iss": ...},
    "iss list": {"iss": ["x"]},
    "aud wrong": {"aud": "other"},
    "aud missing": {"aud": ...},
    "aud list wrong": {"aud": ["other", 1]},
    "aud number": {"aud": 7},
    "id token": {"token_use": "id"},
    "no subject": {"sub": ..., "client_id": ...},
    "subject empty": {"sub": ""},
}
BAD_HEADERS: dict[str, Any] = {
    "alg none": {"alg": "none"},
    "alg HS256": {"alg": "HS256"},
    "alg lower": {"alg": "rs256"},
    "alg null": {"alg": None},
    "alg missing": {"alg": ...},
    "kid unknown": {"kid": "nope"},
    "kid missing": {"kid": ...},
    "kid number": {"kid": 1},
    "crit": {"crit": ["exp"]},
    "b64 false": {"b64": False},
}
NEUTRAL_NAMES = st.one_of(
    st.sampled_from(["jku", "x5u", "x5c", "jwk", "x5t", "cty", "nonce", "jti", "foo", "role", "groups", "email"]),
    st.text(min_size=1, max_size=6),
)


SIGN_ALGS = st.sampled_from(["RS256", "PS256", "ES256", "ES256", "EdDSA", "EdDSA"])  # EC and OKP sign faster
POINTERS = st.sampled_from(["CANARY/jwks.json", "CANARY", {"kty": "RSA", "n": "AQAB", "e": "AQAB"}])
HEADER_EXTRAS = st.dictionaries(NEUTRAL_NAMES, POINTERS | JSON, max_size=3)
CLAIM_EXTRAS = st.dictionaries(NEUTRAL_NAMES, JSON, max_size=3)
BAD_CLAIM_LISTS = st.lists(st.sampled_from(sorted(BAD_CLAIMS)), max_size=2, unique=True)
BAD_HEADER_LISTS = st.lists(st.sampled_from(sorted(BAD_HEADERS)), max_size=1)
SIGNINGS = st.sampled_from(["real", "real", "real", "stranger", "garbage", "other alg"])


@st.composite
def signed_jwts(draw: st.DrawFn, pool: Pool, canary_url: str) -> tuple[str, bool]:
    """A compact JWS signed with real keys, and whether it must be allowed."""
    idp = pool.idp
    alg = draw(SIGN_ALGS)
    key = idp.keys[{"RS256": "rsa", "PS256": "rsa", "ES256": "ec", "EdDSA": "okp"}[alg]]
    header: dict[str, Any] = {"alg": alg, "typ": "at+jwt", "kid": key.kid}
    claims: dict[str, Any] = {
        "iss": idp.issuer,
        "sub": "user-123",
        "aud": idp.audience,
        "iat": NOW - 1,
        "exp": NOW + 600,
        "scope": "read",
        "client_id": "c",
        "jti": uuid.uuid4().hex,
    }
    for name, value in draw(HEADER_EXTRAS).items():
        if name not in RESERVED_HEADER:
            header[name] = value.replace("CANARY", canary_url) if isinstance(value, str) else value
    for name, value in draw(CLAIM_EXTRAS).items():
        if name not in RESERVED_CLAIMS:
            claims[name] = value
    if draw(st.booleans()):
        claims["aud"] = [idp.audience] if draw(st.booleans()) else ["x", idp.audience]
    bad_claims = draw(BAD_CLAIM_LISTS)
    bad_headers = draw(BAD_HEADER_LISTS)
    for name in bad_claims:
        claims.update(BAD_CLAIMS[name])
    for name in bad_headers:
        header.update(BAD_HEADERS[name])
    header = {k: v for k, v in header.items() if v is not ...}
    claims = {k: v for k, v in claims.items() if v is not ...}
    signing = draw(SIGNINGS)
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}".encode()
    if signing == "real":
        signature = JWSRegistry.algorithms[alg].sign(signing_input, key)
    elif signing == "stranger":
        signature = JWSRegistry.algorithms["RS256"].sign(signing_input, STRANGER)
    elif signing == "other alg":
        other = {"RS256": "PS256", "PS256": "RS256", "ES256": "RS256", "EdDSA": "RS256"}[alg]
        signature = JWSRegistry.algorithms[other].sign(signing_input, idp.keys["rsa"])
    else:
        signature = draw(BINARY)
    valid = signing == "real" and not bad_claims and not bad_headers and registered_forms_hold(header, claims)
    return f"{signing_input.decode()}.{b64(signature)}", valid


def registered_forms_hold(header: dict[str, Any], claims: dict[str, Any]) -> bool:
    """RFC 7515 section 4.1 and RFC 7519 section 4.1.7: registered members the product never reads must
    still have their registered form (a URL, a JWK object, a list of strings, a string)."""
    forms = {
        "jku": lambda v: isinstance(v, str) and v.startswith(("http://", "https://")),
        "x5u": lambda v: isinstance(v, str) and v.startswith(("http://", "https://")),
        "jwk": lambda v: isinstance(v, dict),
        "x5c": lambda v: isinstance(v, list) and all(isinstance(i, str) for i in v),
        "x5t": lambda v: isinstance(v, str),
        "cty": lambda v: isinstance(v, str),
    }
    return all(check(header[name]) for name, check in forms.items() if name in header) and isinstance(
        claims.get("jti", ""), str
    )


STRANGER = RSAKey.generate_key(2048, private=True)


@pytest.fixture
def canary():
    with Canary() as port:
        yield port


@fuzz(2000)
@given(data=st.data())
def test_fuzzed_signed_jwts_are_allowed_exactly_when_valid(pool, canary, data):
    token, valid = data.draw(signed_jwts(pool, canary.url))
    simple = data.draw(st.booleans())
    if simple:
        event: dict[str, Any] = event_factory.http_v2(token)
    else:
        event = event_factory.rest_token(token)
    got = outcome_of(lambda: handler.handler(event, None))
    assert canary.connections == 0
    expected = ("allow" if valid else "false") if simple else ("allow" if valid else "unauthorized")
    assert got == expected, f"{got} != {expected}: {token[:120]}"
    EXAMPLES["signed JWTs"] += 1


def test_invalid_token_error_never_escapes_parse_event_as_anything_else():
    """parse_event on junk raises InvalidToken or returns: the property every fuzz oracle leans on."""

    @fuzz(1500)
    @given(JSON)
    def run(event: object) -> None:
        with contextlib.suppress(InvalidToken):
            parse_event(event, PARSED_SOURCES)
        EXAMPLES["parse_event"] += 1

    run()
