"""Load-test a deployed API (API Gateway + this authorizer) over HTTPS with tokens from a real IdP.

    pip install locust            # not a project dependency
    TOKEN_URL=https://tenant.example.com/oauth/token CLIENT_ID=... CLIENT_SECRET=... AUDIENCE=https://api.example \\
    ROUTES="GET /pets, GET /pets/1:2, POST /pets" \\
    locust -f benchmarks/locustfile.py --host https://abc123.execute-api.us-east-1.amazonaws.com/prod \\
        --headless -u 20 -r 5 -t 2m

Tokens come from the IdP's token endpoint with the OAuth 2.0 client credentials grant (RFC 6749 section
4.4), fetched before the test starts (``TOKENS`` distinct tokens, default 1) and again shortly before they
expire; they are never printed. Each request carries ``Authorization: Bearer <token>``; with
``INVALID_SHARE`` a fraction of requests carries a token with a corrupted signature instead, which the
authorizer must refuse.

Environment:

| variable | meaning |
|---|---|
| ``TOKEN_URL`` | the IdP's token endpoint (required) |
| ``CLIENT_ID``, ``CLIENT_SECRET`` | a client allowed the client_credentials grant (required) |
| ``SCOPE`` | space-separated scopes to request (optional) |
| ``AUDIENCE`` | sent as ``audience`` (Auth0, Okta custom servers) (optional) |
| ``RESOURCE`` | sent as ``resource`` (RFC 8707; Entra ID v1, Keycloak) (optional) |
| ``TOKEN_AUTH`` | ``basic`` (``client_secret_basic``, default) or ``post`` (``client_secret_post``) |
| ``TOKENS`` | distinct tokens to fetch and rotate through (default 1: every request repeats one token) |
| ``ROUTES`` | comma-separated ``METHOD /path[:weight]`` (default ``GET /``) |
| ``EXPECT`` | status codes counted as success for a valid token (default ``200``) |
| ``INVALID_SHARE`` | fraction (0-1) of requests sent with a tampered token (default 0) |
| ``EXPECT_INVALID`` | status codes counted as success for a tampered token (default ``401,403``) |

At the end it prints, per route, how many answers were 200, 401, 403 and other codes, split by valid and
tampered tokens (the authorizer's verdicts as API Gateway passed them on: 401 is a refused token, 403 a
Deny policy or ``isAuthorized: false``). Locust's own table has latency percentiles and failures.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from locust import HttpUser, between, events, task

REFRESH_MARGIN_SECONDS = 60.0


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name, default)
    return value if value else default


def _codes(text: str) -> frozenset[int]:
    return frozenset(int(part) for part in text.replace(" ", ",").split(",") if part.strip())


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    weight: int

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"


def parse_routes(text: str) -> list[Route]:
    """``"GET /pets, POST /pets:3"`` -> routes with weights (default 1)."""
    routes = []
    for part in text.split(","):
        spec = part.strip()
        if not spec:
            continue
        weight = 1
        head, sep, tail = spec.rpartition(":")
        if sep and tail.strip().isdigit():
            spec, weight = head.strip(), int(tail)
        method, _, path = spec.partition(" ")
        if not path.startswith("/"):
            raise ValueError(f"ROUTES: {part!r} is not 'METHOD /path[:weight]'")
        routes.append(Route(method.upper(), path.strip(), weight))
    if not routes:
        raise ValueError("ROUTES is empty")
    return routes


def tamper(token: str) -> str:
    """The same token with one signature character changed: well-formed, signature invalid."""
    head, _, signature = token.rpartition(".")
    if not head or not signature:
        return token[:-1] + ("A" if token[-1:] != "A" else "B")  # opaque token: an unknown one
    i = len(signature) // 2
    return f"{head}.{signature[:i]}{'A' if signature[i] != 'A' else 'B'}{signature[i + 1 :]}"


class TokenPool:
    """``TOKENS`` access tokens from the client credentials grant, each refreshed before it expires."""

    def __init__(self) -> None:
        url = _env("TOKEN_URL")
        client_id, secret = _env("CLIENT_ID"), _env("CLIENT_SECRET")
        if not (url and client_id and secret):
            raise RuntimeError("set TOKEN_URL, CLIENT_ID and CLIENT_SECRET (see the docstring of this file)")
        if urlsplit(url).scheme != "https" and urlsplit(url).hostname not in ("127.0.0.1", "localhost", "::1"):
            raise RuntimeError("TOKEN_URL must be https:// (a client secret is sent to it)")
        self.url, self.client_id, self.secret = url, client_id, secret
        self.auth = (_env("TOKEN_AUTH", "basic") or "basic").lower()
        if self.auth not in ("basic", "post"):
            raise RuntimeError("TOKEN_AUTH must be basic or post")
        self.size = max(1, int(_env("TOKENS", "1") or "1"))
        self.tokens: list[tuple[str, float]] = []
        self.fetches = 0
        self._lock = threading.Lock()

    def _fetch(self) -> tuple[str, float]:
        form = {"grant_type": "client_credentials"}
        for name, field in (("SCOPE", "scope"), ("AUDIENCE", "audience"), ("RESOURCE", "resource")):
            value = _env(name)
            if value:
                form[field] = value
        auth: tuple[str, str] | None = (self.client_id, self.secret)
        if self.auth == "post":
            form.update(client_id=self.client_id, client_secret=self.secret)
            auth = None
        response = requests.post(self.url, data=form, auth=auth, timeout=15, headers={"Accept": "application/json"})
        self.fetches += 1
        if response.status_code != 200:
            # The error body of a token endpoint names the problem (invalid_client, unauthorized_client, ...).
            raise RuntimeError(f"token endpoint answered {response.status_code}: {response.text[:300]}")
        body: dict[str, Any] = response.json()
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise RuntimeError("token endpoint answer has no access_token")
        lifetime = float(body.get("expires_in") or 300)
        return token, time.time() + lifetime

    def fill(self) -> None:
        with self._lock:
            while len(self.tokens) < self.size:
                self.tokens.append(self._fetch())

    def pick(self) -> str:
        """A random token of the pool, replaced first when it is about to expire."""
        i = random.randrange(self.size)
        token, expires_at = self.tokens[i]
        if expires_at - time.time() < REFRESH_MARGIN_SECONDS:
            with self._lock:
                token, expires_at = self.tokens[i]
                if expires_at - time.time() < REFRESH_MARGIN_SECONDS:
                    self.tokens[i] = token, expires_at = self._fetch()
        return token


POOL: TokenPool | None = None
STATUS: Counter[tuple[str, str, int]] = Counter()  # (route, "valid"|"tampered", status)


@events.test_start.add_listener
def _on_start(environment: Any, **_: Any) -> None:
    global POOL  # noqa: PLW0603 - one token pool per locust process
    POOL = TokenPool()
    POOL.fill()
    host = environment.host or ""
    if urlsplit(host).scheme != "https":
        print(f"warning: --host {host!r} is not https:// - bearer tokens would travel in clear text")
    print(f"fetched {POOL.fetches} token(s) from {urlsplit(POOL.url).netloc} (client credentials)")


@events.test_stop.add_listener
def _on_stop(environment: Any, **_: Any) -> None:
    if not STATUS:
        return
    rows: dict[tuple[str, str], Counter[str]] = {}
    for (route, kind, status), count in STATUS.items():
        label = str(status) if status in (200, 401, 403) else "other"
        rows.setdefault((route, kind), Counter())[label] += count
    print("\n| route | token | 200 | 401 | 403 | other |\n|---|---|--:|--:|--:|--:|")
    for (route, kind), counts in sorted(rows.items()):
        print(f"| {route} | {kind} | {counts['200']} | {counts['401']} | {counts['403']} | {counts['other']} |")
    print(f"\ntoken fetches: {POOL.fetches if POOL else 0}")


class AuthorizedApiUser(HttpUser):
    """Calls the configured routes with a bearer token; weights from ``ROUTES``."""

    wait_time = between(0.0, 0.1)

    def on_start(self) -> None:
        self.routes = parse_routes(_env("ROUTES", "GET /") or "GET /")
        self.weights = [route.weight for route in self.routes]
        self.expect = _codes(_env("EXPECT", "200") or "200")
        self.expect_invalid = _codes(_env("EXPECT_INVALID", "401,403") or "401,403")
        self.invalid_share = float(_env("INVALID_SHARE", "0") or "0")

    @task
    def call_route(self) -> None:
        assert POOL is not None
        route = random.choices(self.routes, self.weights)[0]
        tampered = random.random() < self.invalid_share
        token = POOL.pick()
        if tampered:
            token = tamper(token)
        kind = "tampered" if tampered else "valid"
        headers = {"Authorization": f"Bearer {token}"}
        name = f"{route.name} [{kind}]"
        with self.client.request(route.method, route.path, headers=headers, name=name, catch_response=True) as response:
            STATUS[(route.name, kind, response.status_code)] += 1
            wanted = self.expect_invalid if tampered else self.expect
            if response.status_code in wanted:
                response.success()
            else:
                response.failure(f"status {response.status_code}, expected {sorted(wanted)}")
