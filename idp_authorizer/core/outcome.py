"""The one place where an outcome becomes what API Gateway sees.

=====================  ==============================  ======================
outcome                IAM policy (REST, 1.0, 2.0 IAM)  2.0 simple response
=====================  ==============================  ======================
allow                  Allow policy                    ``isAuthorized: true``
deny (scope/claim)     explicit Deny policy → 403      ``isAuthorized: false``
invalid token          ``Exception("Unauthorized")``   ``isAuthorized: false``
                       → 401
upstream unavailable   :class:`AuthorizerUnavailable` → 500, which API Gateway does not cache
=====================  ==============================  ======================
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from idp_authorizer.core.binding import is_bound
from idp_authorizer.core.claims import ClaimPath
from idp_authorizer.core.errors import OUTCOMES, AuthorizerError, AuthorizerUnavailable, Outcome, Reason
from idp_authorizer.core.events import Request
from idp_authorizer.core.principal import Principal
from idp_authorizer.core.responses import (
    authn_context,
    iam_policy,
    principal_context,
    simple_response,
    within_budget,
)
from idp_authorizer.core.route_policy import PolicyBuilder, PolicyScope, incoming_only
from idp_authorizer.core.rules import RouteTable, Rule

logger = logging.getLogger("idp_authorizer.runtime")

ResponseMode = Literal["auto", "iam", "simple"]
AuthnCtx = Literal["reduced", "omitted"]
"""How ``authnCtx`` was cut to fit API Gateway's limit: claims reduced, or left out (``None``: whole or off)."""


class Decision(NamedTuple):
    """What the authorizer concluded about one request, before it takes a wire shape."""

    outcome: Outcome
    code: Reason
    principal: Principal | None = None
    authn_ctx: AuthnCtx | None = None
    """Set when ``IDP_INJECT_CONTEXT`` is on and the whole ``authnCtx`` did not fit (said in the decision log)."""
    policy_scope: PolicyScope | None = None
    """For an IAM policy response, what the policy speaks for (``None``: no policy, e.g. a simple response)."""


def decision_for(error: AuthorizerError) -> Decision:
    """The decision an error leads to, by the one table of reasons (:data:`~idp_authorizer.core.errors.OUTCOMES`):
    a fault of the IdP or of the configuration is ``unavailable`` (a 500 API Gateway does not cache),
    never ``invalid`` (a 401 it may cache)."""
    outcome = OUTCOMES[error.code]
    if outcome in ("allow", "deny"):
        outcome = "invalid"  # an error never allows: a reason of the wrong family is still a refusal
    if outcome == "unavailable":
        logger.warning("identity provider unavailable or misconfigured: %s", error.code)
    return Decision(outcome, error.code)


def unauthorized() -> Exception:
    """The exact error API Gateway turns into a 401 for Lambda authorizers returning IAM policies."""
    return Exception("Unauthorized")


@dataclass(frozen=True, slots=True)
class Responder:
    """Renders a :class:`Decision` for a :class:`Request` according to the response settings."""

    table: RouteTable
    mode: ResponseMode = "auto"
    context_claims: Sequence[ClaimPath] = ()
    usage_claim: ClaimPath | None = None
    inject_context: bool = False
    """``IDP_INJECT_CONTEXT``: every response to a verified principal carries ``authnCtx``."""

    builder: PolicyBuilder = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "builder", PolicyBuilder(self.table))

    def claims_used(self) -> frozenset[str] | None:
        """Every claim a response can read: route rules, context claims, the usage identifier claim, and ``cnf``
        (a bound token's binding is proven on every request, and its policy speaks for one ARN).

        ``None`` for all of them: ``authnCtx`` carries every verified claim (IDP_INJECT_CONTEXT).
        """
        if self.inject_context:
            return None
        paths = [path for rule in self.table.all_rules for path, _ in rule.claims] + list(self.context_claims)
        return frozenset(path.top for path in [*paths, *([self.usage_claim] if self.usage_claim else [])]) | {"cnf"}

    def simple(self, request: Request | None) -> bool:
        """Simple responses exist only for HTTP API payload 2.0; ``auto`` uses them there."""
        return request is not None and request.payload_v2 and self.mode != "iam"

    def routes(self, request: Request) -> tuple[Rule | None, ...]:
        """The rule of each method the request names, on the ARN's path.

        The ARN's method, and the event's own (``httpMethod``, ``requestContext.http.method``) when it
        differs: a request is allowed only when both are, so an odd event cannot pick the looser one.
        """
        arn = request.arn
        if arn is None:
            return (None,)
        verbs = (arn.verb,) if request.method in (arn.verb, "") else (arn.verb, request.method)
        return tuple(self.table.route(verb, arn.path) for verb in verbs)

    def decide(self, request: Request, principal: Principal) -> Decision:
        """What the rules say about this request for ``principal`` (every route it names must allow it)."""
        rules = self.routes(request)
        if request.arn is not None and all(self.table.permits(principal, rule) for rule in rules):
            return Decision("allow", Reason.ALLOWED, principal)
        if not is_bound(principal) and any(rule is not None and rule.sender_constrained for rule in rules):
            return Decision("deny", Reason.SENDER_CONSTRAINED_ROUTE, principal)
        return Decision("deny", Reason.INSUFFICIENT_SCOPE, principal)

    def answer(self, request: Request, principal: Principal) -> tuple[Decision, dict[str, Any]]:
        """The decision for a verified principal and the response that carries it.

        An IAM response can be stricter than the rules: an ARN with ``*`` or ``?`` in its path that the
        route policy does not cover cannot be allowed exactly (IAM has no escape), so it is denied.
        The decision carries the policy's scope, so the log says when a policy speaks for the incoming
        ARN alone (not safe for API Gateway to cache by token alone).
        """
        decision = self.decide(request, principal)
        response, cut, scope = self._render(request, decision)
        decision = decision._replace(authn_ctx=cut, policy_scope=scope)
        # An allowed request's policy always allows its ARN, unless that ARN (or the 8 KB fallback for it)
        # could only be written with a wildcard character: then the policy denies, and so does the log.
        policy = response.get("policyDocument")
        if decision.outcome == "allow" and policy is not None and policy["Statement"][0]["Effect"] != "Allow":
            decision = Decision("deny", Reason.WILDCARD_IN_PATH, principal, authn_ctx=cut, policy_scope=scope)
        return decision, response

    def render(self, request: Request | None, decision: Decision) -> dict[str, Any]:
        """The response for API Gateway; raises for the 401 and the fail-closed 500."""
        return self._render(request, decision)[0]

    def _render(
        self, request: Request | None, decision: Decision
    ) -> tuple[dict[str, Any], AuthnCtx | None, PolicyScope | None]:
        if decision.outcome == "unavailable":
            raise AuthorizerUnavailable(decision.code)
        principal = decision.principal
        if self.simple(request):
            if decision.outcome == "allow" and principal is not None:
                response, cut = self._fitting(principal, self.context_claims, True, lambda c: simple_response(True, c))
                return response, cut, None
            return simple_response(False), None, None
        if principal is None or request is None or request.arn is None:
            raise unauthorized()
        return self._iam(request, principal, decision.outcome == "allow")

    def _iam(
        self, request: Request, principal: Principal, permitted: bool
    ) -> tuple[dict[str, Any], AuthnCtx | None, PolicyScope]:
        """The IAM policy response and what it speaks for."""
        assert request.arn is not None
        # A bound token's binding was proven for this request only (a DPoP proof names one method and URL):
        # its policy speaks for the incoming ARN alone, so a result cached by API Gateway, which replays it
        # without the proof, can never stretch to other routes. Result caching must be off for such routes.
        resources = (
            incoming_only(request.arn, permitted)
            if is_bound(principal)
            else self.builder.resources(principal, request.arn, permitted)
        )
        nested, usage = request.payload_v2, self._usage_key(principal)
        response, cut = self._fitting(
            principal, self.context_claims, nested, lambda c: iam_policy(principal.subject, resources, c, usage)
        )
        if within_budget(response):
            return response, cut, resources.policy_scope
        # Too many routes or claims for API Gateway's 8 KB: decide the incoming ARN alone, minimal context.
        fallback = incoming_only(request.arn, permitted)
        response, cut = self._fitting(principal, (), nested, lambda c: iam_policy(principal.subject, fallback, c))
        return response, cut, "incoming_arn"

    def _fitting(
        self,
        principal: Principal,
        claim_names: Sequence[ClaimPath],
        nested: bool,
        build: Callable[[dict[str, Any]], dict[str, Any]],
    ) -> tuple[dict[str, Any], AuthnCtx | None]:
        """The first response built by ``build`` from :meth:`_contexts` that fits; else the last one built."""
        response: dict[str, Any] = {}
        for context, cut in self._contexts(principal, claim_names, nested):
            response = build(context)
            if within_budget(response) or cut == "omitted":
                return response, cut
        return response, None

    def _contexts(
        self, principal: Principal, claim_names: Sequence[ClaimPath], nested: bool
    ) -> Iterator[tuple[dict[str, Any], AuthnCtx | None]]:
        """The contexts to try, largest first: with the whole ``authnCtx``, with the reduced one, without."""
        context = principal_context(principal, claim_names, nested=nested)
        if not self.inject_context:
            yield context, None
            return
        whole = authn_context(principal.claims)
        if whole is not None:
            yield {**context, "authnCtx": whole}, None
        reduced = authn_context(principal.claims, [path.top for path in self.context_claims])
        if reduced is not None:
            yield {**context, "authnCtx": reduced}, "reduced"
        yield context, "omitted"

    def _usage_key(self, principal: Principal) -> str | None:
        if self.usage_claim is None:
            return None
        value = self.usage_claim.of(principal.claims)
        return value if isinstance(value, str) else None
