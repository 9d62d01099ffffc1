"""No leaks: across a broad run of scenarios, no token, Authorization header value or client secret
appears in anything the product emits.

Captured: every stdout/stderr line (the JSON decision lines of :class:`~idp_authorizer.infra.log.DecisionLog`
and the JSON log lines of the ``idp_authorizer`` loggers, at ``IDP_LOG_LEVEL=DEBUG``), every logging
record of any logger and level (message, arguments and formatted exception), every warning, the
full text of every exception raised out of the handler (with its chained causes), and every
response (the authorizer context included).

Scenarios: valid and invalid JWTs in every event shape, the hostile token and event catalogues,
key-set, discovery and introspection endpoints failing in every way the fault server knows, two
providers at once (JWT + RFC 7662 introspection with ``client_secret_basic``), introspection with
``client_secret_post``, and configuration errors whose input holds the client secret.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote_plus

import pytest
from event_factory import http_v1, http_v2, rest_request, rest_token, websocket
from fault_server import DISCOVERY, INTROSPECT, JWKS, Canary, FaultServer, hang, json_body, raw, status
from test_hostile_events import harmless_junk, hostile_events
from test_hostile_tokens import Forge, hostile_tokens

from idp_authorizer import handler
from idp_authorizer.core.errors import AuthorizerUnavailable

pytestmark = [pytest.mark.hostile, pytest.mark.filterwarnings("ignore::UserWarning")]

API = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod"


class Capture(logging.Handler):
    """Every logging record of every logger, formatted with its arguments and exception."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = f"{record.name} {record.levelname} {record.getMessage()} args={record.args!r}"
        if record.exc_info and record.exc_info[1] is not None:
            text += " " + "".join(traceback.format_exception(record.exc_info[1]))
        self.lines.append(text)


class Leaks:
    """What must never appear, and everything the product emitted."""

    def __init__(self) -> None:
        self.secrets: set[str] = set()
        self.emitted: list[tuple[str, str]] = []
        self.calls = 0
        self.collect: Callable[[], str] = lambda: ""

    def secret(self, value: object) -> None:
        """Track a token, header value or secret (and the parts of a token long enough to be telling)."""
        if not isinstance(value, str) or len(value) < 8:
            return
        self.secrets.add(value)
        for part in value.split("."):
            if len(part) >= 24:
                self.secrets.add(part)

    def track_event(self, event: object) -> None:
        """Every Authorization-like value and token an event carries (iteratively: events nest deep)."""
        stack = [event]
        while stack:
            item = stack.pop()
            if isinstance(item, dict):
                for key, value in item.items():
                    if str(key).lower() in ("authorization", "authorizationtoken", "access_token", "cookies", "tok"):
                        for text in value if isinstance(value, list) else [value]:
                            if isinstance(text, str):
                                self.secret(text)
                                self.secret(text.partition(" ")[2])
                                self.secret(text.partition("=")[2])
                    stack.append(value)
            elif isinstance(item, list | tuple):
                stack.extend(item)

    def call(self, run: Callable[[], Any], event: object) -> None:
        self.track_event(event)
        self.calls += 1
        try:
            response = run()
        except Exception as exc:
            assert type(exc) in (Exception, AuthorizerUnavailable), repr(exc)
            self.emitted.append(("exception", "".join(traceback.format_exception(exc)) + repr(exc.args)))
            return
        self.emitted.append(("response", json.dumps(response, default=repr)))

    def check(self) -> None:
        found = [
            f"{where}: …{text[max(0, text.find(s) - 60) : text.find(s) + 20]}…"
            for where, text in self.emitted
            for s in self.secrets
            if s in text
        ]
        assert not found, "\n".join(found[:20])


@pytest.fixture
def leaks(monkeypatch, capsys) -> Iterator[Leaks]:
    capture = Capture()
    watched = [logging.getLogger(), logging.getLogger("idp_authorizer")]
    for logger in watched:
        logger.addHandler(capture)
    monkeypatch.setenv("IDP_LOG_LEVEL", "DEBUG")
    found = Leaks()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found.collect = lambda: collect(found, capsys, capture, caught)
        yield found
    for logger in watched:
        logger.removeHandler(capture)
    handler.close()
    handler.init()


def collect(found: Leaks, capsys: pytest.CaptureFixture[str], capture: Capture, caught: list[Any]) -> str:
    """Gather everything emitted so far into ``found`` and say how much it was."""
    out = capsys.readouterr()
    stdout_lines = [line for line in (out.out + out.err).splitlines() if line.strip()]
    found.emitted += [("stdout", line) for line in stdout_lines]
    found.emitted += [("log record", line) for line in capture.lines]
    found.emitted += [("warning", str(w.message)) for w in caught]
    decisions = sum('"logger":"idp_authorizer.decision"' in line for line in stdout_lines)
    return (
        f"{len(stdout_lines)} stdout lines ({decisions} decision lines) + {len(capture.lines)} log records + "
        f"{len(caught)} warnings + {found.calls} responses/exceptions"
    )


def shapes(token: str) -> list[dict[str, Any]]:
    request = {"type": "REQUEST", "methodArn": f"{API}/GET/pets", "resource": "/pets", "httpMethod": "GET"}
    return [
        rest_token(token),
        rest_request(token, requestContext={"requestId": "r-1"}),
        http_v1(token),
        http_v2(token),
        websocket(token, f"{API}/$connect", requestContext={"eventType": "CONNECT"}),
        {**request, "queryStringParameters": {"access_token": token}},
        {
            "version": "2.0",
            "type": "REQUEST",
            "routeArn": f"{API}/GET/pets",
            "routeKey": "GET /pets",
            "cookies": [f"tok={token}"],
        },
    ]


def configure_env(monkeypatch, env: dict[str, str]) -> bool:
    handler.close()
    for name in [n for n in list(__import__("os").environ) if n.startswith("IDP_") and n != "IDP_LOG_LEVEL"]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return handler.init() is not None


def through_handler(leaks: Leaks, events: list[object]) -> None:
    for event in events:
        leaks.call(lambda e=event: handler.handler(e, None), event)


def test_nothing_the_product_emits_contains_a_token_header_or_secret(leaks, monkeypatch, capsys):
    client_secret = "cs-" + secrets.token_urlsafe(24)
    basic = base64.b64encode(f"{quote_plus('authorizer')}:{quote_plus(client_secret)}".encode()).decode()
    for value in (client_secret, basic, f"Basic {basic}"):
        leaks.secret(value)
    with FaultServer() as server, Canary() as canary:
        idp = server.idp
        providers = [
            {
                "provider": "oidc",
                "name": "jwt",
                "issuer": server.issuer,
                "audience": "demo-api",
                "algorithms": "RS256,PS256,ES256,EdDSA",
            },
            {
                "provider": "introspection",
                "name": "opaque",
                "introspection_url": server.introspection_url,
                "client_id": "authorizer",
                "client_secret": client_secret,
            },
        ]
        base = {
            "IDP_PROVIDERS": json.dumps(providers),
            "IDP_ALLOW_LOOPBACK_HTTP": "true",
            "IDP_TOKEN_SOURCES": "header:Authorization,query:access_token,cookie:tok",
            "IDP_CONTEXT_CLAIMS": "jti,email,username,active",
            "IDP_HTTP_TIMEOUT_SECONDS": "0.5",
            "IDP_NEGATIVE_CACHE_SECONDS": "0",
            "IDP_JWKS_COOLDOWN_SECONDS": "0",
        }
        assert configure_env(monkeypatch, base)

        # valid JWTs and opaque tokens in every shape; an IdP that echoes the token back in its answer
        valid = [idp.mint(alg=alg, email="u@example.com") for alg in ("RS256", "PS256", "ES256", "EdDSA")]
        opaque = [secrets.token_urlsafe(32) for _ in range(3)]
        for token in opaque:
            server.active[token] = {
                "sub": "svc",
                "client_id": "c",
                "scope": "read",
                "exp": time.time() + 300,
                "token": token,
                "username": "svc-user",
            }
        for token in valid + opaque:
            through_handler(leaks, shapes(token))
        assert any(auth == f"Basic {basic}" for auth in server.authorizations), "introspection was not exercised"

        # invalid tokens of every kind
        forge = Forge(idp, canary)
        invalid = [
            idp.mint(ttl=-5),
            idp.mint(aud="other"),
            idp.mint(iss="https://evil.example"),
            valid[0][:-6] + "AAAAAA",
            forge.token(key=forge.stranger_rsa),
            idp.mint(header={"kid": "nope"}),
            secrets.token_urlsafe(40),
            "A" * 20_000,
            idp.mint(padding="x" * 9000),
        ]
        for token in invalid:
            through_handler(leaks, shapes(token))

        # the hostile catalogues
        tokens = [token for _, token in hostile_tokens(forge)]
        through_handler(leaks, [shapes(token)[0] for token in tokens])
        other = idp.mint(sub="someone-else")
        through_handler(leaks, [event for _, event in hostile_events(valid[0], other, invalid[0])])
        through_handler(leaks, [event for _, event in harmless_junk(valid[1])])

        # the IdP failing in every way: key set, discovery, introspection
        faults = [
            status(500),
            status(429),
            raw(b"<html>"),
            json_body({"keys": "x"}),
            hang(5),
            json_body({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "k"}]}),
        ]
        for fault in faults:
            for path in (JWKS, DISCOVERY, INTROSPECT):
                assert configure_env(monkeypatch, base)  # cold: nothing cached
                server.set(path, fault)
                through_handler(leaks, shapes(idp.mint(alg="ES256"))[:2] + shapes(secrets.token_urlsafe(32))[:2])
                server.heal()
        for answer in (
            {"active": True},
            {"active": "true"},
            {"active": True, "sub": 5},
            {"active": False, "token": 1},
            {"active": True, "sub": "x", "exp": "soon"},
            {"active": True, "sub": "x", "token_type": "refresh_token"},
        ):
            server.set(INTROSPECT, json_body(answer))
            through_handler(leaks, shapes(secrets.token_urlsafe(32))[:2])
        server.set(INTROSPECT, status(401, b'{"error":"invalid_client"}'))
        through_handler(leaks, shapes(secrets.token_urlsafe(32))[:2])
        server.heal()

        # the async entry
        import asyncio

        async def run_async() -> None:
            for token in (valid[0], invalid[0], opaque[0], "junk"):
                event = shapes(token)[3]
                leaks.track_event(event)
                try:
                    leaks.emitted.append(("response", json.dumps(await handler.authorize(event))))
                except Exception as exc:
                    leaks.emitted.append(("exception", "".join(traceback.format_exception(exc))))

        asyncio.run(run_async())

        # introspection alone, with client_secret_post from IDP_CLIENT_SECRET
        post_secret = "post-" + secrets.token_urlsafe(24)
        leaks.secret(post_secret)
        assert configure_env(
            monkeypatch,
            {
                "IDP_PROVIDER": "introspection",
                "IDP_INTROSPECTION_URL": server.introspection_url,
                "IDP_CLIENT_ID": "authorizer",
                "IDP_CLIENT_SECRET": post_secret,
                "IDP_CLIENT_AUTH": "client_secret_post",
                "IDP_ALLOW_LOOPBACK_HTTP": "true",
                "IDP_CONTEXT_CLAIMS": "username",
            },
        )
        through_handler(leaks, shapes(opaque[1]) + shapes(secrets.token_urlsafe(32)) + shapes(valid[2]))
        server.set(INTROSPECT, status(401))
        through_handler(leaks, shapes(secrets.token_urlsafe(32))[:1])
        server.heal()

    # configuration errors whose input holds the secret
    bad_configs = [
        {"IDP_PROVIDER": "introspection", "IDP_CLIENT_ID": "a", "IDP_CLIENT_SECRET": client_secret},
        {
            "IDP_PROVIDERS": json.dumps(
                [{"provider": "introspection", "client_id": 1, "client_secret": client_secret, "bogus": client_secret}]
            )
        },
        {"IDP_PROVIDERS": '[{"provider": "introspection", "client_secret": "' + client_secret + '"'},
        {
            "IDP_PROVIDERS": json.dumps(
                [
                    {
                        "provider": "introspection",
                        "client_id": "a",
                        "client_secret": [client_secret],
                        "introspection_url": "http://idp.example/introspect",
                    }
                ]
            )
        },
        {
            "IDP_PROVIDER": "introspection",
            "IDP_CLIENT_ID": "a",
            "IDP_CLIENT_SECRET": client_secret,
            "IDP_INTROSPECTION_URL": f"http://{client_secret}.example/introspect",
        },
        {
            "IDP_PROVIDER": "oidc",
            "IDP_ISSUER": "https://idp.example",
            "IDP_AUDIENCE": "api",
            "IDP_CLIENT_SECRET": client_secret,
            "IDP_RESPONSE": client_secret,
        },
    ]
    for env in bad_configs:
        assert not configure_env(monkeypatch, env)
        through_handler(leaks, shapes(valid[0])[:1])

    summary = leaks.collect()
    leaks.check()
    with capsys.disabled():
        print(f"\n[no leaks] {summary} checked against {len(leaks.secrets)} secret strings: none found")


def test_a_secret_pasted_into_the_wrong_variable_is_not_echoed(leaks, monkeypatch, capsys):
    secret = "cs-" + secrets.token_urlsafe(24)
    leaks.secret(secret)
    env = {"IDP_PROVIDER": "oidc", "IDP_ISSUER": "https://idp.example", "IDP_AUDIENCE": "api"}
    for name in ("IDP_ALGORITHMS", "IDP_RESPONSE", "IDP_TOKEN_SOURCES", "IDP_ROUTES", "IDP_CACHE_MAX_ENTRIES"):
        assert not configure_env(monkeypatch, {**env, name: secret})
        through_handler(leaks, shapes("abc")[:1])
    leaks.collect()
    leaks.check()
