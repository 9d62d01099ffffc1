"""Route rules: which scopes and claim values each route needs. Pure; one engine for every provider.

``IDP_ROUTES`` maps API Gateway route patterns to rules::

    {"GET /pets/{id}": {"scopes": ["pets:read", "admin"]},        # any-of
     "POST /pets": {"all_scopes": ["pets:write", "audit"]},       # all-of
     "ANY /admin/{proxy+}": {"claims": {"role": ["admin"]}},     # claim value any-of
     "DELETE /pets/{id}": {"scopes": ["admin"], "introspect": true},  # JWTs also introspected
     "GET /health": {}}                                           # any valid token

A pattern is ``METHOD PATH`` (``ANY`` or ``*`` for every method) with ``{name}`` matching one path
segment and a trailing ``{name+}`` or ``*`` matching the rest; ``$default`` and ``$connect`` name
API Gateway's special routes. A list value is shorthand for ``{"scopes": [...]}``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from idp_authorizer.principal import Principal

_SPECIAL = ("$default", "$connect")


@dataclass(frozen=True, slots=True)
class Rule:
    """One route pattern and what a principal needs to call it."""

    pattern: str
    method: str
    segments: tuple[str, ...]
    greedy: bool
    any_scopes: frozenset[str] = frozenset()
    all_scopes: frozenset[str] = frozenset()
    claims: tuple[tuple[str, frozenset[str]], ...] = ()
    introspect: bool = False

    @property
    def specificity(self) -> tuple[int, int, int, int]:
        literal = sum(1 for part in self.segments if not part.startswith("{"))
        return (literal, len(self.segments), 0 if self.greedy else 1, 0 if self.method == "*" else 1)

    def allows(self, principal: Principal) -> bool:
        """Whether ``principal`` meets this rule's scope and claim requirements."""
        scopes = principal.scopes
        if self.any_scopes and scopes.isdisjoint(self.any_scopes):
            return False
        if not self.all_scopes <= scopes:
            return False
        return all(_claim_matches(principal.claims.get(name), wanted) for name, wanted in self.claims)

    def matches_template(self, method: str, template: str) -> bool:
        """Exact match against a route template (``routeKey`` path or REST ``resource``)."""
        return self.method in ("*", method.upper()) and self._template_path == template

    def matches_path(self, method: str, path: str) -> bool:
        """Match against a concrete request path, the way API Gateway routes it."""
        if self.method not in ("*", method.upper()):
            return False
        if self.pattern in _SPECIAL:
            return False
        parts = tuple(part for part in path.split("/") if part)
        if self.greedy:
            fixed = self.segments[:-1]
            return len(parts) > len(fixed) and all(_segment_matches(p, q) for p, q in zip(fixed, parts, strict=False))
        return len(parts) == len(self.segments) and all(
            _segment_matches(p, q) for p, q in zip(self.segments, parts, strict=True)
        )

    @property
    def _template_path(self) -> str:
        return self.pattern.partition(" ")[2] if " " in self.pattern else self.pattern

    @property
    def arn_suffix(self) -> tuple[str, str]:
        """``(verb, path)`` for an IAM resource ARN; ``*`` spans every parameter (IAM wildcards cross ``/``)."""
        if self.pattern in _SPECIAL:
            return self.pattern, ""
        path = "/".join("*" if part.startswith("{") or part == "*" else part for part in self.segments)
        return self.method, path


def _segment_matches(pattern: str, part: str) -> bool:
    return pattern.startswith("{") or pattern in ("*", part)


def _claim_matches(value: object, wanted: frozenset[str]) -> bool:
    if isinstance(value, list):
        return any(isinstance(item, str | int) and str(item) in wanted for item in value)
    if isinstance(value, bool):
        return str(value).lower() in wanted
    return isinstance(value, str | int) and str(value) in wanted


def _strings(value: object, what: str) -> frozenset[str]:
    items = value.split() if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise ValueError(f"{what} must be a list of strings")
    return frozenset(items)


def parse_rule(pattern: str, spec: object) -> Rule:
    """Compile one ``IDP_ROUTES`` entry; raises ``ValueError`` naming the pattern when it is malformed."""
    if isinstance(spec, list | str):
        spec = {"scopes": spec}
    if not isinstance(spec, Mapping):
        raise ValueError(f"route {pattern!r}: rule must be an object or a list of scopes")
    unknown = set(spec) - {"scopes", "all_scopes", "claims", "introspect"}
    if unknown:
        raise ValueError(f"route {pattern!r}: unknown keys {sorted(unknown)}")
    method, segments, greedy = _parse_pattern(pattern)
    claims = spec.get("claims", {})
    if not isinstance(claims, Mapping):
        raise ValueError(f"route {pattern!r}: claims must be an object")
    introspect = spec.get("introspect", False)
    if not isinstance(introspect, bool):
        raise ValueError(f"route {pattern!r}: introspect must be true or false")
    return Rule(
        pattern=pattern.strip(),
        method=method,
        segments=segments,
        greedy=greedy,
        any_scopes=_strings(spec.get("scopes", []), f"route {pattern!r}: scopes"),
        all_scopes=_strings(spec.get("all_scopes", []), f"route {pattern!r}: all_scopes"),
        claims=tuple(
            (str(name), _strings(value if isinstance(value, list) else [str(value)], f"claim {name!r}"))
            for name, value in sorted(claims.items())
        ),
        introspect=introspect,
    )


def _parse_pattern(pattern: str) -> tuple[str, tuple[str, ...], bool]:
    text = pattern.strip()
    if text in _SPECIAL:
        return "*", (), False
    method, sep, path = text.partition(" ")
    method = method.upper()
    if not sep or not path.startswith("/") or (not method.isalpha() and method != "*"):
        raise ValueError(f"route {pattern!r} is not 'METHOD /path'")
    segments = tuple(part for part in path.split("/") if part)
    greedy = bool(segments) and (segments[-1] == "*" or segments[-1].endswith("+}"))
    if any(part == "*" or part.endswith("+}") for part in segments[:-1]):
        raise ValueError(f"route {pattern!r}: a greedy segment must come last")
    return ("*" if method == "ANY" else method), segments, greedy


@dataclass(frozen=True, slots=True)
class RouteTable:
    """Every rule, most specific first, plus the scopes every request needs."""

    rules: tuple[Rule, ...] = ()
    required_scopes: frozenset[str] = frozenset()
    allow_unlisted: bool = False
    """When rules exist, whether a route none of them covers is allowed (default: denied)."""

    @classmethod
    def build(
        cls, routes: Mapping[str, Any], required_scopes: Iterable[str] = (), *, allow_unlisted: bool = False
    ) -> RouteTable:
        rules = sorted((parse_rule(p, s) for p, s in routes.items()), key=lambda r: r.specificity, reverse=True)
        return cls(tuple(rules), frozenset(required_scopes), allow_unlisted)

    def find(self, method: str, template: str | None, path: str) -> Rule | None:
        """The rule governing a request: an exact template match, else the most specific path match."""
        if template is not None:
            for rule in self.rules:
                if rule.matches_template(method, template):
                    return rule
        for rule in self.rules:
            if rule.matches_path(method, path):
                return rule
        return None

    @property
    def introspects(self) -> bool:
        """Whether some route also wants JWTs introspected (``"introspect": true``)."""
        return any(rule.introspect for rule in self.rules)

    def needs_introspection(self, principal: Principal, rule: Rule | None, *, whole_api: bool) -> bool:
        """Whether the response for ``principal`` would let it reach a route marked ``introspect``.

        An IAM policy (``whole_api``) allows every route whose rule the principal meets, since API
        Gateway may replay it on any route; a simple response speaks for the incoming ``rule`` alone.
        """
        if whole_api:
            return self.meets_required(principal) and any(r.introspect and r.allows(principal) for r in self.rules)
        return rule is not None and rule.introspect and self.permits(principal, rule)

    def meets_required(self, principal: Principal) -> bool:
        return self.required_scopes <= principal.scopes

    def permits(self, principal: Principal, rule: Rule | None) -> bool:
        """The decision for one route: required scopes, then the route's rule (or the unlisted default)."""
        if not self.meets_required(principal):
            return False
        if rule is None:
            return not self.rules or self.allow_unlisted
        return rule.allows(principal)
