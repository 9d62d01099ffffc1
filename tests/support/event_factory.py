"""The one event factory: API Gateway authorizer events built around an ARN and a token.

Each function returns a new dict in the shape API Gateway sends; ``token=None`` leaves the token out
(an empty ``authorizationToken``, no ``Authorization`` header). Keyword arguments are added to (or
replace) the event's top-level fields, e.g. ``path="/pets"`` or ``requestContext={...}``. A test that
deliberately builds an odd event (a missing field, a wrong type, a hostile value) writes it inline.
"""

from __future__ import annotations

from typing import Any

API = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod"
"""The REST/HTTP API stage most tests use."""
ARN = f"{API}/GET/pets"
"""``GET /pets`` on that stage."""
WS = "arn:aws:execute-api:us-east-1:123456789012:ws1/prod"
"""A WebSocket API stage."""


def bearer(token: str) -> str:
    return f"Bearer {token}"


def rest_token(token: str | None, arn: str = ARN, **fields: Any) -> dict[str, Any]:
    """REST API TOKEN authorizer: ``authorizationToken: "Bearer <token>"``."""
    return {
        "type": "TOKEN",
        "authorizationToken": bearer(token) if token is not None else "",
        "methodArn": arn,
        **fields,
    }


def rest_request(
    token: str | None, arn: str = ARN, *, resource: str = "/pets", method: str = "GET", **fields: Any
) -> dict[str, Any]:
    """REST API REQUEST authorizer: the token in the ``Authorization`` header."""
    return {
        "type": "REQUEST",
        "methodArn": arn,
        "resource": resource,
        "httpMethod": method,
        "headers": {"Authorization": bearer(token)} if token is not None else {},
        **fields,
    }


def http_v1(token: str | None, arn: str = ARN, **fields: Any) -> dict[str, Any]:
    """HTTP API, payload format 1.0: a REST REQUEST event with ``version: "1.0"``."""
    return rest_request(token, arn, version="1.0", **fields)


def http_v2(token: str | None, arn: str = ARN, route_key: str = "GET /pets", **fields: Any) -> dict[str, Any]:
    """HTTP API, payload format 2.0: the token in the (lower-case) ``authorization`` header."""
    return {
        "version": "2.0",
        "type": "REQUEST",
        "routeArn": arn,
        "routeKey": route_key,
        "headers": {"authorization": bearer(token)} if token is not None else {},
        **fields,
    }


def websocket(token: str | None, arn: str = f"{WS}/$connect", **fields: Any) -> dict[str, Any]:
    """WebSocket API ``$connect``: a REQUEST event with the token in the ``Authorization`` header."""
    return {
        "type": "REQUEST",
        "methodArn": arn,
        "headers": {"Authorization": bearer(token)} if token is not None else {},
        "requestContext": {"eventType": "CONNECT", "routeKey": "$connect"},
        **fields,
    }


BUILDERS = {
    "rest-token": rest_token,
    "rest-request": rest_request,
    "http-v1": http_v1,
    "http-v2": http_v2,
    "websocket": websocket,
}
"""Each shape by the name the tests give it."""


def shapes(token: str | None, *names: str) -> dict[str, dict[str, Any]]:
    """The token in each named shape (all five when none is named), for ``GET /pets`` (``$connect``)."""
    return {name: BUILDERS[name](token) for name in names or BUILDERS}
