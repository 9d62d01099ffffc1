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

If ``import idp_authorizer.handler`` fails (the product is not written yet), the peer reports
``n/a: import failed`` instead of a number, so the harness runs regardless.
"""

from __future__ import annotations

import http.server
import inspect
import os
import re
import threading
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from benchmarks.peers._common import BenchInput, PeerUnavailable, Verifier, run_peer

METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/pets"
MODES: tuple[str, ...] = ("first-seen", "repeated")
REPEATED_CACHE_SECONDS = "300"


class _JwksServer:
    """Serves one JSON document at any path on 127.0.0.1 and counts the requests."""

    def __init__(self, body: bytes) -> None:
        self.requests = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "max-age=600")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="jwks-server", daemon=True)
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


def _environment(inp: BenchInput, jwks_url: str) -> dict[str, str]:
    return {
        "IDP_PROVIDER": "jwks",
        "IDP_JWKS_URL": jwks_url,
        "IDP_ISSUER": inp.issuer,
        "IDP_AUDIENCE": inp.audience,
        "IDP_ALGORITHMS": inp.alg,
        "IDP_TOKEN_CACHE_SECONDS": "0" if inp.mode == "first-seen" else REPEATED_CACHE_SECONDS,
        # The product allows plain http:// to loopback only when told to (the key server here is).
        "IDP_ALLOW_LOOPBACK_HTTP": "true",
    }


def setup(inp: BenchInput) -> Verifier:
    server = _JwksServer(inp.jwks_path.read_bytes())
    try:
        os.environ.update(_environment(inp, server.url))  # IDP_LOG_LEVEL etc. pass through if set
        try:
            from idp_authorizer.handler import handler as lambda_handler
        except Exception as exc:
            raise PeerUnavailable(f"import failed: {type(exc).__name__}: {exc}") from exc
        handler: Callable[[dict[str, Any], Any], Any] = lambda_handler

        def verify(token: str) -> Any:
            return handler({"type": "TOKEN", "authorizationToken": "Bearer " + token, "methodArn": METHOD_ARN}, None)

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
        if inp.mode == "repeated":
            for tok in tokens:  # fill the verified-token cache; the timed pass is the second sight
                verify(tok)

    return Verifier(
        verify=verify,
        claims_checked=True,
        decide=policy_allows,
        prime=prime,
        report=lambda: {
            "jwks_fetches": server.requests,
            "token_cache_seconds": _environment(inp, "")["IDP_TOKEN_CACHE_SECONDS"],
        },
        close=server.close,
    )


def main(argv: Sequence[str] | None = None) -> int:
    return run_peer("idp_authorizer", setup, argv, modes=MODES)


if __name__ == "__main__":
    raise SystemExit(main())
