"""Responses API Gateway understands: IAM policies (v1 and 2.0) and 2.0 simple responses. Pure.

https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-lambda-authorizer-output.html
https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-lambda-authorizer.html

API Gateway may cache a result and replay it for every route of the API, so an IAM policy here
allows exactly the routes the principal may call and denies the rest (:func:`route_resources`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from idp_authorizer.arn import ExecuteApiArn
from idp_authorizer.principal import Principal, shared
from idp_authorizer.rules import RouteTable

RESULT_BUDGET = 7 * 1024
"""API Gateway refuses authorizer results over 8 KB; keep a margin for what it adds."""
_CONTEXT_VALUE_BUDGET = 1024


@dataclass(frozen=True, slots=True)
class RouteResources:
    """Resource ARNs to allow and to deny explicitly for one principal on one API stage."""

    allow: tuple[str, ...]
    deny: tuple[str, ...]


def route_resources(table: RouteTable, principal: Principal, arn: ExecuteApiArn, permitted: bool) -> RouteResources:
    """The principal's whole policy for this API stage, so a cached result stays right on every route.

    Allow every route whose rule the principal meets; deny explicitly each route it does not meet
    unless that Deny would also cover an allowed route (IAM lets Deny win). When the rules cannot be
    expressed exactly, fall back to a policy about the incoming ARN alone: correct, just less cacheable.
    The incoming route is always decided by an explicit statement matching ``permitted``.
    """
    everything = arn.api_prefix + "/*"
    incoming = arn.value
    if not table.meets_required(principal):
        return RouteResources((), (everything,))
    if not table.rules:
        return RouteResources((everything,), ()) if permitted else RouteResources((), (incoming,))
    allowed = [arn.resource(*rule.arn_suffix) for rule in table.rules if rule.allows(principal)]
    allow = [everything] if table.allow_unlisted else allowed
    deny: list[str] = []
    for rule in table.rules:
        if rule.allows(principal):
            continue
        resource = arn.resource(*rule.arn_suffix)
        if not any(iam_match(resource, other) for other in allowed):
            deny.append(resource)
        elif any(iam_match(other, resource) for other in allow):
            return _incoming_only(incoming, permitted)
    result = RouteResources(collapse(allow), collapse(deny))
    if evaluate(result, incoming) is not permitted:
        return _incoming_only(incoming, permitted)
    if not permitted and not any(iam_match(pattern, incoming) for pattern in result.deny):
        result = RouteResources(result.allow, (*result.deny, incoming))
    return result


def _incoming_only(incoming: str, permitted: bool) -> RouteResources:
    return RouteResources((incoming,), ()) if permitted else RouteResources((), (incoming,))


@lru_cache(maxsize=1024)
def _wildcard(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)


def iam_match(pattern: str, resource: str) -> bool:
    """IAM resource matching as execute-api does it: ``*`` matches any run of characters, ``/`` included."""
    return _wildcard(pattern).fullmatch(resource) is not None


def evaluate(resources: RouteResources, resource: str) -> bool:
    """Explicit Deny wins, then an Allow, else the implicit deny: how IAM judges one request."""
    if any(iam_match(pattern, resource) for pattern in resources.deny):
        return False
    return any(iam_match(pattern, resource) for pattern in resources.allow)


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


def principal_context(principal: Principal, claim_names: Sequence[str], *, nested: bool) -> dict[str, Any]:
    """The authorizer context: who the principal is plus the configured claims, never the token.

    Payload 1.0 and REST allow only string, number and boolean values: lists of strings become one
    space-separated string, anything else JSON text. Payload 2.0 keeps JSON values as they are.
    Values over a size budget are left out rather than pushing the result past 8 KB.
    """
    context: dict[str, Any] = {
        "sub": principal.subject,
        "iss": principal.issuer,
        "scope": shared(" ".join(sorted(principal.scopes))),
        "provider": principal.provider,
    }
    if principal.client_id is not None:
        context["client_id"] = principal.client_id
    for name in claim_names:
        value = _context_value(principal.claims.get(name), nested)
        if value is not None:
            context[name] = value
    return context


def _context_value(value: object, nested: bool) -> Any:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    if isinstance(value, str | int | float | bool):
        return value if len(str(value)) <= _CONTEXT_VALUE_BUDGET else None
    if not nested and isinstance(value, list) and all(isinstance(item, str) for item in value):
        text = " ".join(value)
    else:
        try:
            text = json.dumps(value, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError):
            return None
    if len(text) > _CONTEXT_VALUE_BUDGET:
        return None
    return json.loads(text) if nested else text


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


def collapse(patterns: Iterable[str]) -> tuple[str, ...]:
    """Patterns without those another pattern already covers (smaller policies, same meaning)."""
    unique = list(dict.fromkeys(patterns))
    return tuple(p for p in unique if not any(o != p and iam_match(o, p) for o in unique))
