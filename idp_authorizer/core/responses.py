"""Responses API Gateway understands: IAM policies (v1 and 2.0) and 2.0 simple responses. Pure.

https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-lambda-authorizer-output.html
https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-lambda-authorizer.html

API Gateway may cache a result and replay it for every route of the API, so the resources of an IAM
policy come from :mod:`idp_authorizer.core.route_policy`, which keeps them right under that replay.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Collection, Mapping, Sequence
from functools import lru_cache
from typing import Any

from idp_authorizer.core.claims import ClaimPath
from idp_authorizer.core.principal import Principal, has_control_characters, interned
from idp_authorizer.core.route_policy import RouteResources

RESULT_BUDGET = 7 * 1024
"""API Gateway refuses authorizer results over 8 KB; keep a margin for what it adds."""
_CONTEXT_VALUE_BUDGET = 1024
IDENTITY_KEYS = frozenset({"sub", "iss", "scope", "provider", "client_id"})
"""The context keys of the verified identity (:func:`principal_context`); no configured claim may take one."""


def iam_policy(
    principal_id: str,
    resources: RouteResources,
    context: Mapping[str, Any] | None,
    usage_key: str | None = None,
) -> dict[str, Any]:
    """An IAM policy response (REST TOKEN/REQUEST, HTTP API 1.0, and 2.0 with simple responses off).

    Responses are read-only: the policy document is shared by every response with the same resources
    (most principals of an API get one of a few), which keeps cached verdicts small.
    """
    response: dict[str, Any] = {"principalId": principal_id, "policyDocument": _policy_document(resources)}
    if context:
        response["context"] = context if type(context) is dict else dict(context)
    if usage_key is not None:
        response["usageIdentifierKey"] = usage_key
    return response


@lru_cache(maxsize=1024)
def _policy_document(resources: RouteResources) -> dict[str, Any]:
    statements: list[dict[str, Any]] = []
    if resources.allow:
        statements.append({"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": list(resources.allow)})
    if resources.deny:
        statements.append({"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": list(resources.deny)})
    return {"Version": "2012-10-17", "Statement": statements}


def simple_response(authorized: bool, context: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """An HTTP API payload 2.0 simple response."""
    if authorized and context:
        return {"isAuthorized": True, "context": dict(context)}
    return {"isAuthorized": authorized}


def principal_context(principal: Principal, claims: Sequence[ClaimPath], *, nested: bool) -> dict[str, Any]:
    """The authorizer context: who the principal is plus the configured claims, never the token.

    Each claim is keyed by its configured name (:class:`~idp_authorizer.core.claims.ClaimPath`).

    Payload 1.0 and REST allow only string, number and boolean values: lists of strings become one
    space-separated string, anything else JSON text. Payload 2.0 keeps JSON values as they are.
    Values over a size budget are left out rather than pushing the result past 8 KB, and so are values
    holding a control character (:func:`~idp_authorizer.core.principal.has_control_characters`).
    """
    context: dict[str, Any] = {
        "sub": principal.subject,
        "iss": principal.issuer,
        "scope": interned(" ".join(sorted(principal.scopes))),
        "provider": principal.provider,
    }
    if principal.client_id is not None:
        context["client_id"] = principal.client_id
    for path in claims:
        value = _context_value(path.of(principal.claims), nested)
        if value is not None:
            context[path.name] = value
    return context


AUTHN_CTX_CLAIMS = ("sub", "iss", "exp")
"""What the reduced ``authnCtx`` always keeps, next to ``IDP_CONTEXT_CLAIMS``."""


def authn_context(claims: Mapping[str, Any], keep: Collection[str] | None = None) -> str | None:
    """``authnCtx``: the standard base64 (RFC 4648 section 4, padded) of the compact JSON of what was verified.

    ``claims`` are a JWT's verified claims or an introspection answer, never the token. With ``keep``, only
    those claims and ``sub``/``iss``/``exp`` (the reduced form used when the whole does not fit in the
    response). ``None`` when the claims are not JSON (they always are when they come from a JSON body).
    """
    chosen = claims if keep is None else {name: claims[name] for name in (*AUTHN_CTX_CLAIMS, *keep) if name in claims}
    try:
        text = json.dumps(dict(chosen), separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        return None
    return base64.b64encode(text.encode("ascii")).decode("ascii")


def _context_value(value: object, nested: bool) -> Any:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    if isinstance(value, str):
        return value if len(value) <= _CONTEXT_VALUE_BUDGET and not has_control_characters(value) else None
    if isinstance(value, int | float | bool):
        return value if len(str(value)) <= _CONTEXT_VALUE_BUDGET else None
    if not nested and isinstance(value, list) and all(isinstance(item, str) for item in value):
        text = " ".join(value)
    else:
        try:
            text = json.dumps(value, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError):
            return None
    # Mapping templates can copy context values into request headers: no control character, at any depth.
    if len(text) > _CONTEXT_VALUE_BUDGET or _holds_control_characters(value):
        return None
    return json.loads(text) if nested else text


def _holds_control_characters(value: object) -> bool:
    if isinstance(value, str):
        return has_control_characters(value)
    if isinstance(value, list):
        return any(_holds_control_characters(item) for item in value)
    if isinstance(value, dict):
        return any(_holds_control_characters(k) or _holds_control_characters(v) for k, v in value.items())
    return False


def within_budget(response: Mapping[str, Any]) -> bool:
    """Whether the serialized result fits API Gateway's limit with margin.

    A cheap upper estimate first (every context value is capped, so the count is bounded); the
    exact serialization only when the estimate comes near the budget.
    """
    statements = response.get("policyDocument", {}).get("Statement", ())
    estimate = 256 + sum(len(resource) + 4 for s in statements for resource in s["Resource"])
    for key, value in response.get("context", {}).items():
        # JSON escaping can grow a string up to six times (\uXXXX); other values are capped when built.
        estimate += len(key) + 8 + (6 * len(value) if isinstance(value, str) else _CONTEXT_VALUE_BUDGET)
    if estimate <= RESULT_BUDGET:
        return True
    return len(json.dumps(response, separators=(",", ":"))) <= RESULT_BUDGET
