"""``idp-authorizer invoke``: the Lambda console's Test tab, locally.

Runs the real handler (``idp_authorizer.handler.handler``, configured from the ``IDP_*``
environment as at a cold start) on one event, read from a JSON file or built from ``--token``,
``--shape`` and ``--route``, and prints what API Gateway would do, the response, and the log lines
the invocation wrote (the decision line among them). The token is never printed.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from idp_authorizer.core.events import DEFAULT_SOURCES, TokenSource
from idp_authorizer.tools.dpop_client import DpopKey

Shape = Literal["rest-token", "rest-request", "http-v1", "http-v2"]
SHAPES: tuple[Shape, ...] = ("rest-token", "rest-request", "http-v1", "http-v2")
API = "arn:aws:execute-api:us-east-1:123456789012:abc123/test"


@dataclass(frozen=True, slots=True)
class Invocation:
    """One run of the handler: the verdict line, the response (``None`` when it raised), the logs."""

    verdict: str
    allowed: bool
    response: dict[str, Any] | None
    logs: list[str]


def build_event(
    shape: Shape, token: str | None, route: str = "GET /pets", *, api: str = API, source: TokenSource | None = None
) -> dict[str, Any]:
    """An event of ``shape`` for ``route`` (``"VERB /path"``) with the token where ``source`` says."""
    method, _, path = route.strip().partition(" ")
    if not method.isalpha() or not path.startswith("/"):
        raise ValueError(f"--route must look like 'GET /pets', not {route!r}")
    method = method.upper()
    arn = f"{api}/{method}/{path.lstrip('/')}"
    if shape == "rest-token":
        return {"type": "TOKEN", "authorizationToken": f"Bearer {token}" if token else "", "methodArn": arn}
    placed = _place(token, source or DEFAULT_SOURCES[0], lower=shape == "http-v2")
    context = {"requestId": f"invoke-{uuid.uuid4().hex[:12]}", "stage": api.rsplit("/", 1)[-1]}
    if shape == "http-v2":
        context["http"] = {"method": method, "path": path}  # type: ignore[assignment]
        return {
            "version": "2.0",
            "type": "REQUEST",
            "routeArn": arn,
            "routeKey": f"{method} {path}",
            "rawPath": path,
            "requestContext": context,
            **placed,
        }
    event = {
        "type": "REQUEST",
        "methodArn": arn,
        "resource": path,
        "path": path,
        "httpMethod": method,
        "requestContext": context,
        **placed,
    }
    return {**event, "version": "1.0"} if shape == "http-v1" else event


def with_dpop(event: dict[str, Any], token: str, key: DpopKey) -> dict[str, Any]:
    """``event`` (a REQUEST-type one from :func:`build_event`) sent as a DPoP client sends it: the ``DPoP``
    scheme and a fresh proof for the URL the event shows (the API's ``execute-api`` host)."""
    arn = str(event.get("routeArn") or event.get("methodArn"))
    region, api_stage = arn.split(":")[3], arn.split(":")[5]
    api_id, stage = api_stage.split("/")[:2]
    host = f"{api_id}.execute-api.{region}.amazonaws.com"
    v2 = event.get("version") == "2.0"
    path = event["rawPath"] if v2 else f"/{stage}{event['path']}"
    method = event["requestContext"]["http"]["method"] if v2 else event["httpMethod"]
    proof = key.proof(method, f"https://{host}{path}", token)
    headers = {"authorization" if v2 else "Authorization": f"DPoP {token}", "host": host, "dpop": proof}
    context = {**event["requestContext"], "domainName": host, **({} if v2 else {"path": path})}
    return {**event, "headers": headers, "requestContext": context}


def load_dpop_key(path: str) -> tuple[DpopKey, bool]:
    """The DPoP client key in the JWK file ``path`` (private), created (ES256) when missing: ``(key, created)``."""
    from joserfc.jwk import JWKRegistry

    file = Path(path)
    if file.exists():
        jwk = json.loads(file.read_text())
        return DpopKey(str(jwk.get("alg", "ES256")), JWKRegistry.import_key(jwk)), False
    key = DpopKey("ES256")
    file.write_text(json.dumps({**key.key.as_dict(private=True), "alg": key.alg}))
    file.chmod(0o600)
    return key, True


def _place(token: str | None, source: TokenSource, *, lower: bool) -> dict[str, Any]:
    """``headers`` / ``queryStringParameters`` / ``cookies`` carrying the token as ``source`` names it."""
    headers: dict[str, str] = {}
    if token is None:
        return {"headers": headers}
    if source.kind == "header":
        headers[source.name.lower() if lower else source.name] = f"Bearer {token}"
        return {"headers": headers}
    if source.kind == "query":
        return {"headers": headers, "queryStringParameters": {source.name: token}}
    if lower:
        return {"headers": headers, "cookies": [f"{source.name}={token}"]}
    return {"headers": {"Cookie": f"{source.name}={token}"}}


def first_source() -> TokenSource:
    """Where the configured authorizer looks first (``IDP_TOKEN_SOURCES``), or the Authorization header."""
    from idp_authorizer.aws.settings import load_settings
    from idp_authorizer.core.errors import ConfigurationError

    try:
        return load_settings().token_sources[0]
    except ConfigurationError:
        return DEFAULT_SOURCES[0]


def invoke(event: dict[str, Any]) -> Invocation:
    """Build the handler from the environment and run it once on ``event``, capturing its log lines."""
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        fresh = "idp_authorizer.handler" not in sys.modules
        from idp_authorizer import handler

        if not fresh:  # a first import has just built it from the environment
            handler.init()
        try:
            verdict, allowed, response = judge(lambda: handler.handler(event, None), _route_arn(event))
        finally:
            handler.close()
    return Invocation(verdict, allowed, response, captured.getvalue().splitlines())


@dataclass(frozen=True, slots=True)
class GatewayAnswer:
    """What API Gateway would do with one handler answer for one request ARN."""

    status: Literal["ALLOW", "403", "401", "500"]
    detail: str
    """What the handler gave: ``simple response``, ``IAM policy for ...``, ``raised ...``."""
    response: dict[str, Any] | None

    @property
    def allowed(self) -> bool:
        return self.status == "ALLOW"


def answer(call: Callable[[], dict[str, Any] | str], arn: str) -> GatewayAnswer:
    """Call the handler and read its answer for the request ``arn`` as API Gateway does."""
    from idp_authorizer.core import iam

    try:
        response = call()
    except Exception as exc:
        if str(exc) == "Unauthorized":
            return GatewayAnswer("401", "raised Exception('Unauthorized')", None)
        return GatewayAnswer("500", f"raised {type(exc).__name__}: {exc}", None)
    if isinstance(response, str):  # IS_OFFLINE: the 401 returned as serverless-offline expects it
        return GatewayAnswer("401", "returned 'Unauthorized'", None)
    if "isAuthorized" in response:
        return GatewayAnswer("ALLOW" if response["isAuthorized"] is True else "403", "simple response", response)
    statements = response["policyDocument"]["Statement"]
    resources = {s["Effect"]: tuple(s["Resource"]) for s in statements}
    allowed = iam.allowed(resources.get("Allow", ()), resources.get("Deny", ()), arn)
    summary = "; ".join(f"{effect} {' '.join(r.split(':', 5)[5] for r in res)}" for effect, res in resources.items())
    return GatewayAnswer(
        "ALLOW" if allowed else "403", f"IAM policy for {response['principalId']}: {summary}", response
    )


_STATUS_LINES = {
    "ALLOW": "ALLOW",
    "403": "403 Forbidden",
    "401": "401 Unauthorized",
    "500": "500 Internal Server Error",
}


def judge(call: Callable[[], dict[str, Any] | str], arn: str) -> tuple[str, bool, dict[str, Any] | None]:
    """``(verdict, allowed, response)``: the verdict line ``invoke`` prints."""
    found = answer(call, arn)
    detail = f"the handler {found.detail}" if found.status in ("401", "500") else found.detail
    return f"{_STATUS_LINES[found.status]} ({detail})", found.allowed, found.response


def render(invocation: Invocation) -> str:
    lines = [f"API Gateway: {invocation.verdict}", "response:"]
    lines.append(json.dumps(invocation.response, indent=2) if invocation.response is not None else "  (none: raised)")
    lines.append("log:")
    lines += invocation.logs or ["  (no log lines: IDP_LOG_LEVEL is above INFO)"]
    return "\n".join(lines)


def load_event(path: str) -> dict[str, Any]:
    """An event from a JSON file (``-`` for stdin)."""
    text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()  # noqa: SIM115 - read once
    event = json.loads(text)
    if not isinstance(event, dict):
        raise ValueError("the event must be a JSON object")
    return event


def _route_arn(event: dict[str, Any]) -> str:
    arn = event.get("routeArn") if event.get("version") == "2.0" else event.get("methodArn")
    return arn if isinstance(arn, str) else ""
