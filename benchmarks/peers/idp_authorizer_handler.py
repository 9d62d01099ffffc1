"""OUR implementation: the Lambda handler of ``idp_authorizer``, called the way Lambda calls it.

Configured through the public environment contract (see DESIGN.md)::

    IDP_PROVIDER=jwks  IDP_JWKS_URL=http://127.0.0.1:<port>/jwks.json
    IDP_ISSUER=<iss>   IDP_AUDIENCE=<aud>  IDP_ALGORITHMS=<alg>
    IDP_TOKEN_CACHE_SECONDS=0    (mode "first-seen": verified-token cache off, every token verified)
    IDP_TOKEN_CACHE_SECONDS=300  (mode "repeated": all tokens seen once untimed, the second pass timed)
    IDP_ALLOW_LOOPBACK_HTTP=true (the key server below is plain http:// on 127.0.0.1)

``jwks.json`` is served by a tiny HTTP server on 127.0.0.1 started in this process (loopback ``http://``
is allowed by the design), and one warm-up call is made before anything is timed, so the key set is
loaded and the event loop and HTTP session exist. Each timed call is
``handler({"type": "TOKEN", "authorizationToken": "Bearer " + token, "methodArn": ...}, None)``; the
returned IAM policy is checked (untimed) to Allow the methodArn.

Mode ``introspection-hit`` configures the introspection provider instead
(``IDP_PROVIDER=introspection``, ``IDP_INTROSPECTION_URL`` on the same loopback server,
``IDP_INTROSPECTION_CACHE_SECONDS=300``) and sends opaque tokens: each JWT of the token files stands
for the opaque token ``op_`` + base64url(SHA-256(JWT)), looked up from a table built before timing.
The server answers ``active: true`` for the timed and warm-up tokens, and for the negatives what an
authorization server would say (``active: false`` for the forged ones, the wrong ``iss``/``aud`` or a
past ``exp`` for the others). Every timed token is introspected once before the timed pass, so the
timed pass measures the cache hit (and the report shows one introspection call per distinct token).

If ``import idp_authorizer.handler`` fails (the product is not written yet), the peer reports
``n/a: import failed`` instead of a number, so the harness runs regardless.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import inspect
import json
import os
import re
import threading
import urllib.parse
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from benchmarks.peers._common import BenchInput, PeerUnavailable, Verifier, run_peer

METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/pets"
MODES: tuple[str, ...] = ("first-seen", "repeated", "introspection-hit")
REPEATED_CACHE_SECONDS = "300"


class _IdpServer:
    """On 127.0.0.1: the key set for any GET, RFC 7662 answers from ``answers`` for a POST; counts both."""

    def __init__(self, body: bytes, answers: dict[str, dict[str, Any]] | None = None) -> None:
        self.requests = 0
        self.introspections = 0
        outer = self
        table = answers or {}

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests += 1
                self._send(body, "max-age=600")

            def do_POST(self) -> None:
                outer.introspections += 1
                form = urllib.parse.parse_qs(self.rfile.read(int(self.headers.get("Content-Length", 0))).decode())
                token = (form.get("token") or [""])[0]
                self._send(json.dumps(table.get(token, {"active": False})).encode(), "no-store")

            def _send(self, payload: bytes, cache_control: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Cache-Control", cache_control)
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="idp-server", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/jwks.json"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@lru_cache(maxsize=256)
def _arn_pattern(resource: str) -> re.Pattern[str]:
    # IAM resource matching: '*' any run of characters, '?' exactly one.
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in resource))


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def policy_allows(result: Any, method_arn: str = METHOD_ARN) -> bool:
    """True iff ``result`` is an IAM policy response that Allows ``execute-api:Invoke`` on
    ``method_arn`` and no Deny statement covers it (IAM: an explicit Deny wins)."""
    if not isinstance(result, dict) or not isinstance(result.get("policyDocument"), dict):
        return False
    allowed = False
    for stmt in _as_list(result["policyDocument"].get("Statement", [])):
        if not isinstance(stmt, dict):
            return False
        actions = [str(a) for a in _as_list(stmt.get("Action", []))]
        if not any(a in ("execute-api:Invoke", "execute-api:*", "*") for a in actions):
            continue
        covers = any(_arn_pattern(str(r)).fullmatch(method_arn) for r in _as_list(stmt.get("Resource", [])))
        if not covers:
            continue
        if stmt.get("Effect") == "Deny":
            return False
        if stmt.get("Effect") == "Allow":
            allowed = True
    return allowed


def _environment(inp: BenchInput, url: str) -> dict[str, str]:
    if inp.mode == "introspection-hit":
        return {
            "IDP_PROVIDER": "introspection",
            "IDP_INTROSPECTION_URL": url.replace("/jwks.json", "/introspect"),
            "IDP_CLIENT_ID": "bench-authorizer",
            "IDP_CLIENT_SECRET": "bench-secret",
            "IDP_ISSUER": inp.issuer,
            "IDP_AUDIENCE": inp.audience,
            "IDP_INTROSPECTION_CACHE_SECONDS": REPEATED_CACHE_SECONDS,
            "IDP_ALLOW_LOOPBACK_HTTP": "true",
        }
    return {
        "IDP_PROVIDER": "jwks",
        "IDP_JWKS_URL": url,
        "IDP_ISSUER": inp.issuer,
        "IDP_AUDIENCE": inp.audience,
        "IDP_ALGORITHMS": inp.alg,
        "IDP_TOKEN_CACHE_SECONDS": "0" if inp.mode == "first-seen" else REPEATED_CACHE_SECONDS,
        # The product allows plain http:// to loopback only when told to (the key server here is).
        "IDP_ALLOW_LOOPBACK_HTTP": "true",
    }


def _opaque(jwt: str) -> str:
    return "op_" + base64.urlsafe_b64encode(hashlib.sha256(jwt.encode()).digest()).rstrip(b"=").decode()


def _introspection_answers(inp: BenchInput) -> dict[str, dict[str, Any]]:
    """What the authorization server says of each opaque token (keyed by the opaque token)."""
    active = {"active": True, "scope": "read write", "client_id": "bench-client", "token_type": "Bearer",
              "iss": inp.issuer, "aud": inp.audience, "exp": 4102444800}  # fmt: skip
    answers = {_opaque(t): {**active, "sub": f"user-{i}"} for i, t in enumerate([*inp.tokens, *inp.warmup_tokens])}
    refuted = {"wrong_iss": {"iss": "https://other.example/"}, "wrong_aud": {"aud": "other-api"}, "expired": {"exp": 1}}
    for name, token in inp.negatives.items():
        if name in refuted:
            answers[_opaque(token)] = {**active, "sub": name, **refuted[name]}
        elif name == "missing_exp":
            answers[_opaque(token)] = {key: value for key, value in active.items() if key != "exp"} | {"sub": name}
    return answers  # anything else (forged signatures, alg none) is unknown to the server: active false


def setup(inp: BenchInput) -> Verifier:
    introspecting = inp.mode == "introspection-hit"
    server = _IdpServer(inp.jwks_path.read_bytes(), _introspection_answers(inp) if introspecting else None)
    # The opaque token each JWT of the files stands for, looked up (a dict get) inside the timed call.
    every = [*inp.tokens, *inp.warmup_tokens, *inp.negatives.values()]
    opaque = {t: _opaque(t) for t in every} if introspecting else {}
    try:
        os.environ.update(_environment(inp, server.url))  # IDP_LOG_LEVEL etc. pass through if set
        try:
            from idp_authorizer.handler import handler as lambda_handler
        except Exception as exc:
            raise PeerUnavailable(f"import failed: {type(exc).__name__}: {exc}") from exc
        handler: Callable[[dict[str, Any], Any], Any] = lambda_handler

        if introspecting:

            def verify(token: str) -> Any:
                event = {"type": "TOKEN", "authorizationToken": "Bearer " + opaque[token], "methodArn": METHOD_ARN}
                return handler(event, None)

        else:

            def verify(token: str) -> Any:
                event = {"type": "TOKEN", "authorizationToken": "Bearer " + token, "methodArn": METHOD_ARN}
                return handler(event, None)

        # One warm-up call before anything else: loads settings, the event loop, the key set.
        first = verify(inp.warmup_tokens[0] if inp.warmup_tokens else inp.tokens[0])
        if inspect.isawaitable(first):
            raise RuntimeError("handler returned an awaitable; the Lambda handler must be synchronous")
        if not policy_allows(first):
            raise RuntimeError(f"warm-up call did not Allow a valid token: {str(first)[:300]}")
    except BaseException:
        server.close()
        raise

    def prime(tokens: Sequence[str]) -> None:
        if inp.mode != "first-seen":
            for tok in tokens:  # fill the cache; the timed pass is the second sight
                verify(tok)

    def report() -> dict[str, Any]:
        if introspecting:
            return {"introspections": server.introspections, "distinct_tokens": len(inp.tokens)}
        seconds = _environment(inp, "")["IDP_TOKEN_CACHE_SECONDS"]
        return {"jwks_fetches": server.requests, "token_cache_seconds": seconds}

    return Verifier(verify=verify, claims_checked=True, decide=policy_allows, prime=prime, report=report,
                    close=server.close)  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    return run_peer("idp_authorizer", setup, argv, modes=MODES)


if __name__ == "__main__":
    raise SystemExit(main())
