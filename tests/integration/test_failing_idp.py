"""Failing and hostile identity providers (tests/support/fault_server.py on 127.0.0.1) against the real composition.

Required behaviour: fail closed (the deliberate 500, :class:`AuthorizerUnavailable`, never an allow);
keep serving last-known-good keys for a bounded stale window during an outage; never let a bad
response replace good keys; recover without a restart when the IdP comes back; never follow a
redirect, never read an unbounded body, never wait longer than the configured timeouts.

Time-dependent policy (maximum age, stale window, failure backoff) is driven by an injected clock
through :func:`idp_authorizer.aws.compose.build_authorizer`, the same composition the handler uses.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from clock import FakeClock
from encoding import b64
from event_factory import http_v2, rest_token
from fault_server import (
    DISCOVERY,
    INTROSPECT,
    JWKS,
    Canary,
    FaultServer,
    blackhole_url,
    drop,
    gzip_bomb,
    hang,
    json_body,
    oversized,
    raw,
    redirect,
    refused_url,
    slow_body,
    status,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from joserfc.jwk import ECKey, OKPKey, RSAKey
from outcomes import outcome_of
from tally import tally

from idp_authorizer import handler
from idp_authorizer.core.errors import ConfigurationError
from idp_authorizer.infra.http import check_url
from idp_authorizer.jose.jwk import build_key_set

pytestmark = [pytest.mark.hostile, pytest.mark.filterwarnings("ignore::UserWarning")]

TIMEOUT, CONNECT_TIMEOUT = 0.5, 0.3
TIME_BOUND = 2 * TIMEOUT + 2 * CONNECT_TIMEOUT + 1.0  # one retry on connection errors, plus slack
MAX_AGE, STALE, RETRY_AFTER = 600.0, 3600.0, 5.0
SCENARIOS = tally("failing IdPs", "fault scenarios survived (fail closed, nothing allowed wrongly)", itemised=False)
"""Fault scenarios survived, for the summary line at the end of the run."""


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as fault:
        yield fault


@pytest.fixture
def canary() -> Iterator[Canary]:
    with Canary() as port:
        yield port


def jwks_env(server: FaultServer, **extra: str) -> dict[str, str]:
    env = {
        "IDP_PROVIDER": "jwks",
        "IDP_ISSUER": server.issuer,
        "IDP_JWKS_URL": server.jwks_url,
        "IDP_AUDIENCE": "demo-api",
        "IDP_ALGORITHMS": "RS256,PS256,ES256,EdDSA",
        "IDP_ALLOW_LOOPBACK_HTTP": "true",
        "IDP_HTTP_TIMEOUT_SECONDS": str(TIMEOUT),
        "IDP_HTTP_CONNECT_TIMEOUT_SECONDS": str(CONNECT_TIMEOUT),
        "IDP_HTTP_MAX_RESPONSE_BYTES": "65536",
        "IDP_JWKS_MAX_AGE_SECONDS": str(MAX_AGE),
        "IDP_JWKS_STALE_SECONDS": str(STALE),
        "IDP_JWKS_COOLDOWN_SECONDS": "0",
        "IDP_TOKEN_CACHE_SECONDS": "0",
        "IDP_NEGATIVE_CACHE_SECONDS": "0",
    }
    env.update(extra)
    return env


def oidc_fault_env(server: FaultServer, **extra: str) -> dict[str, str]:
    env = jwks_env(server, IDP_PROVIDER="oidc", **extra)
    del env["IDP_JWKS_URL"]
    return env


def timed(call: Callable[[], Any]) -> tuple[str, float]:
    started = time.perf_counter()
    got = outcome_of(call)
    return got, time.perf_counter() - started


# -- nothing cached: every fault fails closed ------------------------------------------------------

BAD_STATUSES = [500, 502, 503, 504, 429, 400, 401, 403, 404, 204, 201, 304]
INVALID_JSON = [
    b"not json",
    b"{",
    b"",
    b"<html>error</html>",
    b"\xff\xfe{\x00}\x00",
    b'{"keys": [}',
    b"\x00" * 64,
    b'{"keys": []}garbage',
    b"[" * 100_000,
]
WRONG_SHAPE: list[object] = [
    [],
    "keys",
    1,
    None,
    True,
    {},
    {"keys": "x"},
    {"keys": {}},
    {"keys": None},
    {"keys": []},
    {"keys": [1, "a", None, [], {}]},
    {"keys": [{"kty": "RSA"}]},
    {"Keys": []},
    {"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "k"}]},
]


def body_faults() -> dict[str, Callable[[], Any]]:
    faults: dict[str, Callable[[], Any]] = {f"status {code}": (lambda c=code: status(c)) for code in BAD_STATUSES}
    faults.update({f"invalid JSON {i}": (lambda b=body: raw(b)) for i, body in enumerate(INVALID_JSON)})
    faults.update({f"wrong shape {i}": (lambda v=value: json_body(v)) for i, value in enumerate(WRONG_SHAPE)})
    faults.update(
        {
            "oversized with Content-Length": lambda: oversized(1 << 20, chunked=False),
            "oversized chunked": lambda: oversized(1 << 20, chunked=True),
            "oversized by one byte": lambda: oversized(65537, chunked=False),
            "gzip bomb": lambda: gzip_bomb(64 << 20),
            "timeout before headers": lambda: hang(30),
            "timeout during body": lambda: slow_body(30),
            "connection dropped": drop,
            "JSON with the wrong content type": lambda: raw(b"\x00\x01", "text/html"),
        }
    )
    return faults


FAULTS = body_faults()


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_key_set_fault_with_nothing_cached_fails_closed(server, build, name):
    server.set(JWKS, FAULTS[name]())
    authorizer = build(jwks_env(server))
    token = server.mint()
    for event in (rest_token(token), http_v2(token)):
        got, elapsed = timed(lambda e=event: authorizer.handle(e))
        assert got == "unavailable", name
        assert elapsed < TIME_BOUND, f"{name}: {elapsed:.2f}s"
    # A status is an answer: never retried. A dropped connection is retried once (by aiohttp, for an
    # idempotent GET; the product retries only a connection that could not be made). Then the failure
    # backoff keeps further requests off the IdP for a while.
    assert server.hits[JWKS] <= (2 if name == "connection dropped" else 1), name
    SCENARIOS[f"jwks: {name}"] += 1


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_redirects_to_another_host_are_never_followed(build, canary, code):
    for target in (canary.url + JWKS, "https://idp.example.invalid/jwks", "file:///etc/passwd"):
        with FaultServer() as other:
            other.set(JWKS, redirect(target, code))
            authorizer = build(jwks_env(other))
            assert outcome_of(lambda: authorizer.handle(rest_token(other.mint()))) == "unavailable"
            assert other.hits[JWKS] == 1
    assert canary.connections == 0
    SCENARIOS[f"redirect {code}"] += 1


def test_connection_refused_fails_closed_quickly(build, server):
    authorizer = build(jwks_env(server, IDP_JWKS_URL=refused_url()))
    got, elapsed = timed(lambda: authorizer.handle(rest_token(server.mint())))
    assert got == "unavailable" and elapsed < TIME_BOUND
    SCENARIOS["connection refused"] += 1


def test_connect_timeout_fails_closed_within_the_connect_timeout(build, server):
    with blackhole_url() as url:
        authorizer = build(jwks_env(server, IDP_JWKS_URL=url))
        got, elapsed = timed(lambda: authorizer.handle(rest_token(server.mint())))
    assert got == "unavailable"
    assert elapsed < CONNECT_TIMEOUT + TIMEOUT + 1.0, elapsed
    SCENARIOS["connect timeout"] += 1


def test_failed_fetch_backs_off_then_recovers_without_restart(server, build):
    clock = FakeClock()
    server.set(JWKS, status(503))
    authorizer = build(jwks_env(server), clock)
    for _ in range(20):
        assert outcome_of(lambda: authorizer.handle(rest_token(server.mint()))) == "unavailable"
    assert server.hits[JWKS] == 1, "callers fail fast during the backoff instead of queueing on a dead IdP"
    server.heal()
    assert outcome_of(lambda: authorizer.handle(rest_token(server.mint()))) == "unavailable"
    clock.advance(RETRY_AFTER + 0.1)
    assert outcome_of(lambda: authorizer.handle(rest_token(server.mint()))) == "allow"
    assert server.hits[JWKS] == 2
    SCENARIOS["backoff then recovery"] += 1


# -- last-known-good keys during an outage ---------------------------------------------------------

OUTAGES: dict[str, Callable[[], Any]] = {
    "503": lambda: status(503),
    "429": lambda: status(429),
    "invalid JSON": lambda: raw(b"<html>"),
    "empty key set": lambda: json_body({"keys": []}),
    "only unusable keys": lambda: json_body({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "x"}]}),
    "not a key set": lambda: json_body({"error": "maintenance"}),
    "oversized": lambda: oversized(1 << 20, chunked=True),
    "timeout": lambda: hang(30),
    "dropped": drop,
}


@pytest.mark.parametrize("outage", sorted(OUTAGES))
def test_last_known_good_keys_serve_a_bounded_stale_window_then_recover(server, build, outage):
    clock = FakeClock()
    authorizer = build(jwks_env(server), clock)
    assert outcome_of(lambda: authorizer.handle(rest_token(server.mint(ttl=10**6)))) == "allow"
    fetches = server.hits[JWKS]
    assert fetches == 1

    server.set(JWKS, OUTAGES[outage]())
    clock.advance(MAX_AGE + 1)  # the keys are now past their maximum age: a refresh is due, and fails
    assert outcome_of(lambda: authorizer.handle(rest_token(server.mint(ttl=10**6)))) == "allow"
    assert outcome_of(lambda: authorizer.handle(http_v2(server.mint(ttl=10**6)))) == "allow"
    # The bad answer replaced nothing: forged tokens are still refused, known keys still work.
    stranger = RSAKey.generate_key(2048, private=True, parameters={"kid": server.idp.keys["rsa"].kid})
    forged = server.mint(key=stranger, ttl=10**6)
    assert outcome_of(lambda: authorizer.handle(rest_token(forged))) == "unauthorized"
    clock.advance(STALE - 10)  # still inside the stale window
    assert outcome_of(lambda: authorizer.handle(rest_token(server.mint(ttl=10**6)))) == "allow"
    clock.advance(20)  # past maximum age + stale window: fail closed
    assert outcome_of(lambda: authorizer.handle(rest_token(server.mint(ttl=10**6)))) == "unavailable"
    # Three refresh windows, each at most one attempt (a dropped connection: 2 requests, see above).
    assert server.hits[JWKS] <= fetches + 3 * (2 if outage == "dropped" else 1), "one attempt per backoff window"

    server.heal()
    clock.advance(RETRY_AFTER + 0.1)
    token = server.mint(ttl=10**6)
    assert outcome_of(lambda: authorizer.handle(rest_token(token))) == "allow"
    server.idp.rotate_keys()  # and the recovered IdP's new keys are picked up
    assert outcome_of(lambda: authorizer.handle(rest_token(server.mint(ttl=10**6)))) == "allow"
    SCENARIOS[f"stale window: {outage}"] += 1


def test_a_refused_token_during_an_outage_is_not_remembered_as_invalid(server, build):
    """The fail-closed 500 is not a verdict: once the IdP is back the same token is allowed."""
    clock = FakeClock()
    authorizer = build(jwks_env(server, IDP_NEGATIVE_CACHE_SECONDS="300", IDP_TOKEN_CACHE_SECONDS="300"), clock)
    server.set(JWKS, status(500))
    token = server.mint(ttl=10**6)
    assert outcome_of(lambda: authorizer.handle(rest_token(token))) == "unavailable"
    server.heal()
    clock.advance(RETRY_AFTER + 0.1)
    assert outcome_of(lambda: authorizer.handle(rest_token(token))) == "allow"
    SCENARIOS["no negative caching of an outage"] += 1


# -- hostile key sets -------------------------------------------------------------------------------


def unusable_keys(server: FaultServer) -> list[object]:
    rsa = server.idp.keys["rsa"].as_dict(private=False)
    ec = server.idp.keys["ec"].as_dict(private=False)
    small = RSAKey.generate_key(1024).as_dict(private=False)
    p384 = ECKey.generate_key("P-384").as_dict(private=False)
    x25519 = OKPKey.generate_key("X25519").as_dict(private=False)
    duplicate = RSAKey.generate_key(2048).as_dict(private=False)
    return [
        {"kty": "oct", "k": b64(b"s" * 32), "kid": "hmac", "alg": "HS256"},
        {"kty": "oct", "k": b64(json.dumps(rsa).encode()), "kid": "confused"},
        {**small, "kid": "rsa-1024"},
        {**rsa, "e": b64(b"\x01"), "kid": "rsa-e1"},
        {**rsa, "n": "!!!", "kid": "rsa-bad-n"},
        {**rsa, "n": 12345, "kid": "rsa-int-n"},
        {**rsa, "kid": "rsa-enc", "use": "enc"},
        {**rsa, "kid": "rsa-ops", "key_ops": ["encrypt"]},
        {**rsa, "kid": "rsa-ops-str", "key_ops": "verify"},
        {**rsa, "kid": "rsa-hs", "alg": "HS256"},
        {**rsa, "kid": "rsa-alg-list", "alg": ["RS256"]},
        {**rsa, "kid": "rsa-alg-dict", "alg": {"RS256": True}},
        {**rsa, "kid": "rsa-as-es", "alg": "ES256"},
        {**rsa, "kid": "rsa-kty-list", "kty": ["RSA"]},
        {**rsa, "kid": "rsa-kty-null", "kty": None},
        {**rsa, "kid": "rsa-kty-lower", "kty": "rsa"},
        {**rsa, "kid": "rsa-kty-ec", "kty": "EC"},
        {**rsa, "kid": "rsa-use-list", "use": ["sig"]},
        {**ec, "kid": "ec-off-curve", "y": ec["x"]},
        {**ec, "kid": "ec-as-rsa", "kty": "RSA"},
        {**ec, "kid": "ec-crv-list", "crv": ["P-256"]},
        {**p384, "kid": "p384-as-es256", "alg": "ES256"},
        {**x25519, "kid": "x25519"},
        {**rsa, "kid": ""},
        {**rsa, "kid": 7},
        {**rsa, "kid": "\ud800"},
        {**rsa, "kid": "k" * 300},
        {k: v for k, v in rsa.items() if k != "kid"},
        {**duplicate, "kid": "twin"},
        {**RSAKey.generate_key(2048).as_dict(private=False), "kid": "twin"},
        1,
        "key",
        None,
        [],
        {},
    ]


def test_unusable_keys_next_to_good_ones_are_skipped_and_good_ones_work(server, build, caplog):
    good = server.idp.jwks()["keys"]
    bad = unusable_keys(server)
    server.set(JWKS, json_body({"keys": [*bad[:10], *good, *bad[10:]]}))
    authorizer = build(jwks_env(server, IDP_JWKS_COOLDOWN_SECONDS="60"))
    for alg in ("RS256", "PS256", "ES256", "EdDSA"):
        assert outcome_of(lambda a=alg: authorizer.handle(rest_token(server.mint(alg=a)))) == "allow", alg
    for kid in (
        "hmac",
        "confused",
        "rsa-1024",
        "rsa-e1",
        "rsa-enc",
        "rsa-ops",
        "rsa-hs",
        "rsa-alg-list",
        "rsa-as-es",
        "rsa-kty-list",
        "ec-off-curve",
        "p384-as-es256",
        "x25519",
        "twin",
        "rsa-use-list",
    ):
        forged = server.mint(header={"kid": kid})  # signed by the real RSA key, under an unusable key's kid
        assert outcome_of(lambda t=forged: authorizer.handle(rest_token(t))) == "unauthorized", kid
    assert server.hits[JWKS] == 2, "one refresh for the first unknown kid, then the penalty box"
    SCENARIOS["unusable keys next to good ones"] += 1


def test_mismatched_use_alg_kty_are_refused(server, build):
    rsa = server.idp.keys["rsa"]
    ec = server.idp.keys["ec"]
    keys = [
        {**rsa.as_dict(private=False), "alg": "RS256"},  # declared RS256: a PS256 token under it is refused
        {**ec.as_dict(private=False), "alg": "ES256"},
    ]
    server.set(JWKS, json_body({"keys": keys}))
    authorizer = build(jwks_env(server))
    assert outcome_of(lambda: authorizer.handle(rest_token(server.mint(alg="RS256")))) == "allow"
    assert outcome_of(lambda: authorizer.handle(rest_token(server.mint(alg="ES256")))) == "allow"
    refused = {
        "PS256 under an RS256 key": server.mint(alg="PS256"),
        "ES256 under the RSA kid": server.mint(alg="ES256", header={"kid": rsa.kid}),
        "RS256 under the EC kid": server.mint(alg="RS256", header={"kid": ec.kid}),
        "EdDSA key absent": server.mint(alg="EdDSA"),
    }
    for case, token in refused.items():
        assert outcome_of(lambda t=token: authorizer.handle(rest_token(t))) == "unauthorized", case
    SCENARIOS["mismatched use/alg/kty"] += 1


def test_a_huge_key_set_is_read_only_so_far(server, build):
    """A hostile 450 KB set of thousands of keys costs a bounded parse: the first MAX_KEYS entries only."""
    from idp_authorizer.jose.jwk import MAX_KEYS

    ec = server.idp.keys["ec"].as_dict(private=False)
    junk = [{**ec, "kid": f"junk-{i}", "y": ec["x"]} for i in range(3000)]  # off-curve: the costliest refusal
    server.set(JWKS, json_body({"keys": [*server.idp.jwks()["keys"], *junk]}))
    authorizer = build(jwks_env(server, IDP_HTTP_MAX_RESPONSE_BYTES=str(1 << 20)))
    started = time.perf_counter()
    assert outcome_of(lambda: authorizer.handle(rest_token(server.mint(alg="ES256")))) == "allow"
    assert time.perf_counter() - started < 0.5 + TIME_BOUND
    # The good keys beyond the first MAX_KEYS entries are not read: fail closed, not a long stall.
    with FaultServer() as other:
        other.set(JWKS, json_body({"keys": [*junk[:MAX_KEYS], *other.idp.jwks()["keys"]]}))
        late = build(jwks_env(other, IDP_HTTP_MAX_RESPONSE_BYTES=str(1 << 20)))
        assert outcome_of(lambda: late.handle(rest_token(other.mint()))) == "unavailable"
    SCENARIOS["huge key set"] += 1


JWK_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.sampled_from(
        [
            "RSA",
            "EC",
            "OKP",
            "oct",
            "sig",
            "enc",
            "RS256",
            "ES256",
            "EdDSA",
            "P-256",
            "Ed25519",
            "AQAB",
            "AA",
            "X25519",
            "P-521",
            "secp256k1",
        ]
    ),
    st.lists(st.sampled_from(["verify", "sign", "RS256", "sig"]), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
JWK_NAMES = st.sampled_from(["kty", "kid", "use", "alg", "key_ops", "n", "e", "crv", "x", "y", "d", "k", "x5c"])


@settings(
    max_examples=600,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.lists(
        st.one_of(
            st.dictionaries(JWK_NAMES, JWK_VALUES, max_size=8),
            st.builds(
                lambda base, extra: {**extra, "base": base},
                st.sampled_from(["rsa", "ec", "okp"]),
                st.dictionaries(JWK_NAMES, JWK_VALUES, max_size=3),
            ),
            JWK_VALUES,
        ),
        max_size=6,
    )
)
def test_fuzzed_key_sets_never_raise_anything_but_a_clean_refusal(dev_idp, keys):
    """Whatever a hostile IdP puts in its key set, parsing it yields usable keys or ValueError only."""
    published = {name: key.as_dict(private=False) for name, key in dev_idp.keys.items()}
    document = {"keys": [{**published[k["base"]], **k} if isinstance(k, dict) and "base" in k else k for k in keys]}
    for entry in document["keys"]:
        if isinstance(entry, dict):
            entry.pop("base", None)
    try:
        found = build_key_set(document, ("RS256", "PS256", "ES256", "EdDSA"))
    except ValueError:
        return
    for kid, key in found.items():
        assert isinstance(kid, str) and kid.isprintable() and key.verifiers


# -- discovery ---------------------------------------------------------------------------------------

DISCOVERY_FAULTS: dict[str, Callable[[FaultServer, Canary], Any]] = {
    "issuer with a trailing slash": lambda s, c: json_body({**s.discovery(), "issuer": s.issuer + "/"}),
    "issuer of another host": lambda s, c: json_body({**s.discovery(), "issuer": "https://evil.example"}),
    "issuer in another case": lambda s, c: json_body({**s.discovery(), "issuer": s.issuer.upper()}),
    "issuer missing": lambda s, c: json_body({"jwks_uri": s.jwks_url}),
    "issuer a list": lambda s, c: json_body({**s.discovery(), "issuer": [s.issuer]}),
    "jwks_uri missing": lambda s, c: json_body({"issuer": s.issuer}),
    "jwks_uri a number": lambda s, c: json_body({**s.discovery(), "jwks_uri": 123}),
    "jwks_uri a list": lambda s, c: json_body({**s.discovery(), "jwks_uri": [s.jwks_url]}),
    "jwks_uri plain http off loopback": lambda s, c: json_body(
        {**s.discovery(), "jwks_uri": "http://idp.example/jwks"}
    ),
    "jwks_uri file": lambda s, c: json_body({**s.discovery(), "jwks_uri": "file:///etc/passwd"}),
    "jwks_uri ftp": lambda s, c: json_body({**s.discovery(), "jwks_uri": "ftp://127.0.0.1/jwks"}),
    "jwks_uri javascript": lambda s, c: json_body({**s.discovery(), "jwks_uri": "javascript:alert(1)"}),
    "jwks_uri relative": lambda s, c: json_body({**s.discovery(), "jwks_uri": "/jwks"}),
    "jwks_uri scheme-relative": lambda s, c: json_body({**s.discovery(), "jwks_uri": f"//127.0.0.1:{c.port}/jwks"}),
    "jwks_uri empty": lambda s, c: json_body({**s.discovery(), "jwks_uri": ""}),
    "jwks_uri broken IPv6": lambda s, c: json_body({**s.discovery(), "jwks_uri": "http://[::1/jwks"}),
    "discovery redirect": lambda s, c: redirect(c.url + DISCOVERY),
    "discovery 500": lambda s, c: status(500),
    "discovery invalid JSON": lambda s, c: raw(b"{"),
    "discovery a list": lambda s, c: json_body([s.discovery()]),
    "discovery oversized": lambda s, c: oversized(1 << 20, chunked=True),
}


@pytest.mark.parametrize("name", sorted(DISCOVERY_FAULTS))
def test_discovery_that_is_off_is_refused(server, build, canary, name):
    server.set(DISCOVERY, DISCOVERY_FAULTS[name](server, canary))
    authorizer = build(oidc_fault_env(server))
    token = server.mint()
    for event in (rest_token(token), http_v2(token)):
        assert outcome_of(lambda e=event: authorizer.handle(e)) == "unavailable", name
    assert server.hits[JWKS] == 0
    assert canary.connections == 0
    SCENARIOS[f"discovery: {name}"] += 1


def test_discovery_keeps_the_last_good_document_when_a_refresh_returns_a_wrong_issuer(server, build):
    clock = FakeClock()
    authorizer = build(oidc_fault_env(server), clock)
    assert outcome_of(lambda: authorizer.handle(rest_token(server.mint(ttl=10**6)))) == "allow"
    server.set(DISCOVERY, json_body({"issuer": "https://evil.example", "jwks_uri": "https://evil.example/jwks"}))
    clock.advance(MAX_AGE + 1)
    assert outcome_of(lambda: authorizer.handle(rest_token(server.mint(ttl=10**6)))) == "allow"
    assert server.hits[DISCOVERY] == 2 and server.hits[JWKS] == 2
    SCENARIOS["discovery: poisoned refresh ignored"] += 1


# -- plain http ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "loopback_ok", "production_ok"),
    [
        ("https://idp.example/jwks", True, True),
        ("http://idp.example/jwks", False, False),
        ("http://127.0.0.1:8080/jwks", True, False),
        ("http://127.5.6.7/jwks", True, False),
        ("http://localhost/jwks", True, False),
        ("http://[::1]:8080/jwks", True, False),
        ("http://0.0.0.0/jwks", False, False),
        ("http://127.0.0.1.nip.io/jwks", False, False),
        ("http://localhost.idp.example/jwks", False, False),
        ("http://2130706433/jwks", False, False),
        ("ftp://127.0.0.1/jwks", False, False),
        ("file:///etc/passwd", False, False),
        ("https:///jwks", False, False),
        ("//idp.example/jwks", False, False),
        ("idp.example/jwks", False, False),
        ("", False, False),
        ("http://[::1/jwks", False, False),
        ("https://[::1/jwks", False, False),
        ("https://idp.example:99999/jwks", True, True),
    ],
)
def test_check_url_allows_https_and_loopback_http_only_when_told(url, loopback_ok, production_ok):
    for allow, expected in ((True, loopback_ok), (False, production_ok)):
        if expected:
            assert check_url(url, "IDP_JWKS_URL", allow_loopback_http=allow) == url
        else:
            with pytest.raises(ConfigurationError):
                check_url(url, "IDP_JWKS_URL", allow_loopback_http=allow)


@pytest.mark.parametrize("variable", ["IDP_JWKS_URL", "IDP_ISSUER"])
def test_plain_http_configuration_fails_closed_without_any_request(server, configure, monkeypatch, canary, variable):
    """Plain http to a non-loopback host is refused; loopback http only with IDP_ALLOW_LOOPBACK_HTTP=true."""
    env = jwks_env(server) if variable == "IDP_JWKS_URL" else oidc_fault_env(server)
    configure(env)
    assert outcome_of(lambda: handler.handler(rest_token(server.mint()))) == "allow"
    hits = sum(server.hits.values())
    for value, loopback in (("http://idp.example/x", "true"), (env[variable], "false")):
        monkeypatch.setenv(variable, value)
        monkeypatch.setenv("IDP_ALLOW_LOOPBACK_HTTP", loopback)
        assert handler.init() is None
        assert outcome_of(lambda: handler.handler(rest_token(server.mint()))) == "unavailable"
    assert sum(server.hits.values()) == hits
    monkeypatch.setenv(variable, env[variable])
    monkeypatch.setenv("IDP_ALLOW_LOOPBACK_HTTP", "true")
    assert handler.init() is not None
    assert outcome_of(lambda: handler.handler(rest_token(server.mint()))) == "allow"
    SCENARIOS[f"plain http refused: {variable}"] += 1


# -- introspection endpoints that misbehave ----------------------------------------------------------------

NOW = time.time()
INTROSPECTION_ANSWERS: dict[str, tuple[Callable[[], Any], str]] = {
    "active": (lambda: json_body({"active": True, "sub": "svc", "exp": NOW + 300}), "allow"),
    "inactive": (lambda: json_body({"active": False}), "unauthorized"),
    "active as a string": (lambda: json_body({"active": "true", "sub": "svc"}), "unavailable"),
    "active as 1": (lambda: json_body({"active": 1, "sub": "svc"}), "unavailable"),
    "active missing": (lambda: json_body({"sub": "svc"}), "unavailable"),
    "no subject": (lambda: json_body({"active": True}), "unauthorized"),
    "subject a number": (lambda: json_body({"active": True, "sub": 5}), "unauthorized"),
    "expired": (lambda: json_body({"active": True, "sub": "svc", "exp": NOW - 5}), "unauthorized"),
    "exp a string": (lambda: json_body({"active": True, "sub": "svc", "exp": "soon"}), "unauthorized"),
    "exp NaN": (lambda: raw(b'{"active": true, "sub": "svc", "exp": NaN}'), "unauthorized"),
    "exp 1e400": (lambda: raw(b'{"active": true, "sub": "svc", "exp": 1e400}'), "unauthorized"),
    "nbf in the future": (lambda: json_body({"active": True, "sub": "svc", "nbf": NOW + 600}), "unauthorized"),
    "refresh token": (lambda: json_body({"active": True, "sub": "svc", "token_type": "refresh_token"}), "unauthorized"),
    "aud malformed": (lambda: json_body({"active": True, "sub": "svc", "aud": [1]}), "unauthorized"),
    "iss a lone surrogate": (lambda: raw(b'{"active": true, "sub": "svc", "iss": "\\ud800"}'), "allow"),
    "sub a lone surrogate": (lambda: raw(b'{"active": true, "sub": "\\udfff", "client_id": "\\ud800"}'), "allow"),
    "a list": (lambda: json_body([{"active": True, "sub": "svc"}]), "unavailable"),
    "invalid JSON": (lambda: raw(b"{"), "unavailable"),
    # RFC 6749 section 5.2: invalid_request blames the client's request, not the token (issue 11 item 3).
    "400 invalid_request": (lambda: status(400, b'{"error":"invalid_request"}'), "unavailable"),
    "400 unsupported_token_type": (lambda: status(400, b'{"error":"unsupported_token_type"}'), "unauthorized"),
    "401 (our credentials)": (lambda: status(401, b'{"error":"invalid_client"}'), "unavailable"),
    "500": (lambda: status(500), "unavailable"),
    "redirect": (lambda: redirect("https://idp.example.invalid/introspect", 307), "unavailable"),
    "oversized": (lambda: oversized(1 << 20, chunked=True), "unavailable"),
    "timeout": (lambda: hang(30), "unavailable"),
    "dropped": (drop, "unavailable"),
}


def introspection_env(server: FaultServer) -> dict[str, str]:
    return {
        "IDP_PROVIDER": "introspection",
        "IDP_INTROSPECTION_URL": server.introspection_url,
        "IDP_CLIENT_ID": "authorizer",
        "IDP_CLIENT_SECRET": "not-the-real-one",
        "IDP_ALLOW_LOOPBACK_HTTP": "true",
        "IDP_HTTP_TIMEOUT_SECONDS": str(TIMEOUT),
        "IDP_HTTP_MAX_RESPONSE_BYTES": "65536",
    }


@pytest.mark.parametrize("name", sorted(INTROSPECTION_ANSWERS))
def test_introspection_answers_fail_closed(server, build, name):
    fault, expected = INTROSPECTION_ANSWERS[name]
    server.set(INTROSPECT, fault())
    authorizer = build(introspection_env(server))
    # Decision lines go where Lambda sends them: a strict UTF-8 stream (pytest's capture would forgive more).
    authorizer.path.log.stream = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict", write_through=True)
    got, elapsed = timed(lambda: authorizer.handle(rest_token("opaque-" + name.encode().hex())))
    assert got == expected, name
    assert elapsed < TIME_BOUND
    # A POST is never repeated once it may have reached the server.
    assert server.hits[INTROSPECT] == 1
    SCENARIOS[f"introspection: {name}"] += 1


def test_introspection_exp_beyond_the_float_range_is_refused(server, build):
    server.set(INTROSPECT, raw(b'{"active": true, "sub": "svc", "exp": 1' + b"0" * 400 + b"}"))
    authorizer = build(introspection_env(server))
    assert outcome_of(lambda: authorizer.handle(rest_token("opaque-huge-exp"))) == "unauthorized"
