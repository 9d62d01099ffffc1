"""Route rules: which scopes and claim values each route needs, and which rule governs a request. Pure.

``IDP_ROUTES`` maps API Gateway route patterns to rules::

    {"GET /pets/{id}": {"scopes": ["pets:read", "admin"]},        # any-of
     "POST /pets": {"all_scopes": ["pets:write", "audit"]},       # all-of
     "ANY /admin/{proxy+}": {"claims": {"role": ["admin"]}},     # claim value any-of (JSON values)
     "GET /ops": {"claims": {"/realm_access/roles": ["ops"]}},   # a nested claim (JSON Pointer)
     "DELETE /pets/{id}": {"scopes": ["admin"], "introspect": true},  # JWTs also introspected
     "POST /payments": {"sender_constrained": true},               # DPoP or mTLS-bound tokens only
     "GET /health": {}}                                           # any valid token

A pattern is ``METHOD PATH`` (``ANY`` or ``*`` for every method) with ``{name}`` matching one
non-empty path segment and a trailing ``{name+}`` or ``*`` matching the non-empty rest; ``$default``
and ``$connect`` name API Gateway's special routes. A list value is shorthand for ``{"scopes": [...]}``.

Every API type is decided the same way, on the request's real method and path (the ARN's, which is
what a cached IAM policy is replayed against), routed the way API Gateway routes
(https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-routes.html): segment
by segment from the left a literal beats ``{param}`` beats a greedy ``{proxy+}``, then a
method-specific route beats ``ANY``; ``$default`` only when nothing else matches. The route template
the event names (``routeKey``, ``resource``) is not used: a TOKEN event has none, and a route key
``ANY /x`` says nothing about the method.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from idp_authorizer.core.claims import ClaimPath, claim_path
from idp_authorizer.core.principal import Principal

METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
"""The HTTP methods API Gateway routes; ``ANY`` means these."""
CONNECT = "$connect"
DEFAULT = "$default"
PARAM = "{}"
"""A ``{name}`` segment, as :attr:`Rule.segments` holds it (names do not matter for matching)."""
GREEDY = "{+}"
"""A trailing ``{name+}`` or ``*`` segment."""

_LITERAL, _PARAM, _GREEDY = 2, 1, 0

ClaimValue = tuple[str, Any]
"""A JSON scalar tagged with its JSON type (``s``, ``n``, ``b``): ``true`` never equals ``1`` or ``"true"``."""


def claim_value(value: object) -> ClaimValue | None:
    """``value`` tagged with its JSON type, or ``None`` when it is not a JSON scalar a rule can name."""
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        return ("n", value)
    if isinstance(value, str):
        return ("s", value)
    return None


def split_path(path: str) -> tuple[str, ...]:
    """Path segments as the ARN carries them (``""`` is the root; empty segments are kept as such)."""
    return tuple(path.split("/")) if path else ()


@dataclass(frozen=True, slots=True)
class Rule:
    """One route pattern and what a principal needs to call it."""

    pattern: str
    methods: frozenset[str]
    """The methods it routes (``ANY``: :data:`METHODS`); ``{"$connect"}``; empty for ``$default``."""
    segments: tuple[str, ...]
    """Literal segments, :data:`PARAM` and a last :data:`GREEDY`."""
    any_scopes: frozenset[str] = frozenset()
    all_scopes: frozenset[str] = frozenset()
    claims: tuple[tuple[ClaimPath, frozenset[ClaimValue]], ...] = ()
    """Claims (:mod:`~idp_authorizer.core.claims` names, nested ones too) and the values any-of which each must hold."""
    introspect: bool = False
    sender_constrained: bool = False
    """Only sender-constrained tokens (DPoP or certificate-bound, binding proven) may call this route."""

    @property
    def special(self) -> bool:
        return self.pattern in (DEFAULT, CONNECT)

    @property
    def greedy(self) -> bool:
        return bool(self.segments) and self.segments[-1] == GREEDY

    @property
    def priority(self) -> tuple[tuple[int, ...], int]:
        """API Gateway's order among routes matching one request: compare segment ranks left to right
        (literal > ``{param}`` > greedy), then a method-specific route over ``ANY``."""
        ranks = tuple(_GREEDY if s == GREEDY else _PARAM if s == PARAM else _LITERAL for s in self.segments)
        return ranks, 0 if self.methods == METHODS else 1

    def permits(self, principal: Principal) -> bool:
        """Whether ``principal`` meets this rule's scope, claim and sender-constraint requirements."""
        if self.sender_constrained and "cnf" not in principal.claims:
            return False  # a principal with cnf reaches the rules only once its binding is proven
        scopes = principal.scopes
        if self.any_scopes and scopes.isdisjoint(self.any_scopes):
            return False
        if not self.all_scopes <= scopes:
            return False
        return all(_claim_matches(path.of(principal.claims), wanted) for path, wanted in self.claims)

    def matches(self, verb: str, parts: tuple[str, ...]) -> bool:
        """Whether a request ``verb`` on path ``parts`` (:func:`split_path`) fits this pattern."""
        if verb not in self.methods or self.pattern == DEFAULT:
            return False
        segments = self.segments
        if self.greedy:
            fixed = len(segments) - 1
            # The greedy rest is non-empty: "/pets/" (parts ("pets", "")) is not "/pets/{proxy+}".
            if len(parts) <= fixed or (len(parts) == fixed + 1 and not parts[fixed]):
                return False
            return all(_segment_matches(s, p) for s, p in zip(segments[:fixed], parts, strict=False))
        return len(parts) == len(segments) and all(_segment_matches(s, p) for s, p in zip(segments, parts, strict=True))


def _segment_matches(segment: str, part: str) -> bool:
    return bool(part) if segment == PARAM else segment == part


def _claim_matches(value: object, wanted: frozenset[ClaimValue]) -> bool:
    # A list-valued claim (cognito:groups, roles, groups) meets the rule when it holds any wanted value.
    if isinstance(value, list):
        return any(claim_value(item) in wanted for item in value)
    return claim_value(value) in wanted


def _strings(value: object, what: str) -> frozenset[str]:
    items = value.split() if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise ValueError(f"{what} must be a list of strings")
    return frozenset(items)


def _claim_values(name: str, value: object, pattern: str) -> tuple[ClaimPath, frozenset[ClaimValue]]:
    items = value if isinstance(value, list) else [value]
    tagged = [claim_value(item) for item in items]
    if not tagged or None in tagged:
        raise ValueError(f"route {pattern!r}: claim {name!r} must be a string, number, boolean or a list of them")
    try:
        path = claim_path(name)
    except ValueError as exc:
        raise ValueError(f"route {pattern!r}: {exc}") from None
    return path, frozenset(t for t in tagged if t is not None)


def parse_rule(pattern: str, spec: object) -> Rule:
    """Compile one ``IDP_ROUTES`` entry; raises ``ValueError`` naming the pattern when it is malformed."""
    if isinstance(spec, list | str):
        spec = {"scopes": spec}
    if not isinstance(spec, Mapping):
        raise ValueError(f"route {pattern!r}: rule must be an object or a list of scopes")
    unknown = set(spec) - {"scopes", "all_scopes", "claims", "introspect", "sender_constrained"}
    if unknown:
        raise ValueError(f"route {pattern!r}: unknown keys {sorted(unknown)}")
    methods, segments = _parse_pattern(pattern)
    claims = spec.get("claims", {})
    if not isinstance(claims, Mapping):
        raise ValueError(f"route {pattern!r}: claims must be an object")
    introspect, constrained = spec.get("introspect", False), spec.get("sender_constrained", False)
    if not isinstance(introspect, bool) or not isinstance(constrained, bool):
        raise ValueError(f"route {pattern!r}: introspect and sender_constrained must be true or false")
    return Rule(
        pattern=pattern.strip(),
        methods=methods,
        segments=segments,
        any_scopes=_strings(spec.get("scopes", []), f"route {pattern!r}: scopes"),
        all_scopes=_strings(spec.get("all_scopes", []), f"route {pattern!r}: all_scopes"),
        claims=tuple(_claim_values(str(name), value, pattern) for name, value in sorted(claims.items())),
        introspect=introspect,
        sender_constrained=constrained,
    )


def _parse_pattern(pattern: str) -> tuple[frozenset[str], tuple[str, ...]]:
    text = pattern.strip()
    if text == DEFAULT:
        return frozenset(), ()
    if text == CONNECT:
        return frozenset({CONNECT}), ()
    method, sep, path = text.partition(" ")
    method = method.upper()
    if not sep or not path.startswith("/") or (method not in METHODS and method not in ("ANY", "*")):
        raise ValueError(
            f"route {pattern!r} is not 'METHOD /path' with METHOD one of ANY, {', '.join(sorted(METHODS))}"
        )
    parts = [part for part in path.split("/") if part]
    segments = tuple(_parse_segment(part, last=i == len(parts) - 1, pattern=pattern) for i, part in enumerate(parts))
    return (METHODS if method in ("ANY", "*") else frozenset({method})), segments


def _parse_segment(part: str, *, last: bool, pattern: str) -> str:
    greedy = part == "*" or (part.startswith("{") and part.endswith("+}"))
    if greedy and not last:
        raise ValueError(f"route {pattern!r}: a greedy segment must come last")
    if greedy:
        return GREEDY
    if part.startswith("{") and part.endswith("}") and len(part) > 2:
        return PARAM
    if "{" in part or "}" in part:
        raise ValueError(f"route {pattern!r}: a path parameter is a whole segment, '{{name}}'")
    return part


@dataclass(frozen=True, slots=True)
class RouteTable:
    """Every rule, in API Gateway's routing order, plus the scopes every request needs."""

    rules: tuple[Rule, ...] = ()
    """The method-and-path rules, highest priority first (``$default`` and ``$connect`` are apart)."""
    required_scopes: frozenset[str] = frozenset()
    allow_unlisted: bool = False
    """When rules exist, whether a route none of them covers is allowed (default: denied)."""
    default: Rule | None = None
    connect: Rule | None = None

    @classmethod
    def build(
        cls, routes: Mapping[str, Any], required_scopes: Iterable[str] = (), *, allow_unlisted: bool = False
    ) -> RouteTable:
        parsed = [parse_rule(p, s) for p, s in routes.items()]
        special = {rule.pattern: rule for rule in parsed if rule.special}
        regular = sorted((rule for rule in parsed if not rule.special), key=lambda r: r.priority, reverse=True)
        _refuse_duplicates(regular)
        return cls(
            tuple(regular), frozenset(required_scopes), allow_unlisted, special.get(DEFAULT), special.get(CONNECT)
        )

    @property
    def all_rules(self) -> tuple[Rule, ...]:
        return self.rules + tuple(rule for rule in (self.default, self.connect) if rule is not None)

    @property
    def empty(self) -> bool:
        return not self.all_rules

    def route(self, verb: str, path: str) -> Rule | None:
        """The rule API Gateway would route ``verb path`` to; ``None`` when no rule (not even ``$default``) does."""
        if verb == CONNECT and not path:
            return self.connect  # only the exact $connect ARN; "$connect/x" is no route of a WebSocket API
        parts = split_path(path)
        for rule in self.rules:
            if rule.matches(verb, parts):
                return rule
        return self.default

    @property
    def introspects(self) -> bool:
        """Whether some route also wants JWTs introspected (``"introspect": true``)."""
        return any(rule.introspect for rule in self.all_rules)

    def needs_introspection(self, principal: Principal, rule: Rule | None, *, whole_api: bool) -> bool:
        """Whether the response for ``principal`` would let it reach a route marked ``introspect``.

        An IAM policy (``whole_api``) allows every route whose rule the principal meets, since API
        Gateway may replay it on any route; a simple response speaks for the incoming ``rule`` alone.
        """
        if whole_api:
            return self.meets_required(principal) and any(r.introspect and r.permits(principal) for r in self.all_rules)
        return rule is not None and rule.introspect and self.permits(principal, rule)

    def meets_required(self, principal: Principal) -> bool:
        return self.required_scopes <= principal.scopes

    def permits(self, principal: Principal, rule: Rule | None) -> bool:
        """The decision for one route: required scopes, then the route's rule (or the unlisted default)."""
        if not self.meets_required(principal):
            return False
        if rule is None:
            return self.empty or self.allow_unlisted
        return rule.permits(principal)


def _refuse_duplicates(rules: list[Rule]) -> None:
    """Two rules API Gateway could not tell apart (``GET /pets/{id}`` and ``GET /pets/{name}``) are a mistake."""
    seen: dict[tuple[frozenset[str], tuple[str, ...]], str] = {}
    for rule in rules:
        key = (rule.methods, rule.segments)
        if key in seen:
            raise ValueError(f"routes {seen[key]!r} and {rule.pattern!r} name the same route")
        seen[key] = rule.pattern
