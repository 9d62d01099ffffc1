"""Route-aware IAM resources: a policy that stays right when API Gateway caches it. Pure.

API Gateway may cache an authorizer's policy and replay it on every route of the API stage, so the
policy speaks for the whole stage. It must never allow a request that a direct call would deny (it
is *sound*), it decides the incoming request as the rules do, and it allows as many of the
principal's other routes as IAM's wildcards can say without over-reaching.

How each allowed rule becomes IAM resources (``*`` spans ``/`` in IAM, ``?`` is one character):

- a literal segment is itself; ``{param}`` and a greedy tail are ``?*`` (non-empty);
- ``ANY`` is one resource per method: ``*`` in the method position would also span path segments;
- an *exclusion* Deny, ``*/*`` in place of a ``{param}``, stops the parameter from spanning segments
  (``GET/pets/?*`` must not allow ``GET/pets/1/secret``); parameters followed only by parameters and
  a greedy tail need none, since any split of the rest is the same route;
- two Denies, ``*//*`` and ``*/?*/``, keep paths with an empty segment out (they are never routed
  to a ``{param}``);
- an *overlap* Deny for every denied rule that outranks an allowed one on a shared request
  (``GET /pets/mine`` denied while ``GET /pets/{id}`` is allowed), as narrow as the overlap.

Together these prove soundness: a request they allow has the allowed rule's exact shape, so API
Gateway routes it to that rule or to one that outranks it, and an outranking denied rule is denied
explicitly. When the unlisted default (``$default`` or ``IDP_ROUTES_DEFAULT=allow``) lets the
principal through, the policy is ``Allow *`` with every denied rule denied instead.

The policy is exact (every allowed route stays allowed on replay) unless a Deny also covers another
allowed route, as ``GET /pets/*/*`` (needed for ``GET /pets/{id}``) covers ``GET /pets/{id}/photos``:
IAM cannot say "one segment". Then a cached policy is still sound and merely denies that route
until it is decided directly. When the incoming request itself would be denied by such a Deny, or
the policy is over API Gateway's size limit, the response speaks for the incoming ARN alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal, NamedTuple

from idp_authorizer.core import iam
from idp_authorizer.core.arn import ExecuteApiArn
from idp_authorizer.core.principal import Principal
from idp_authorizer.core.rules import CONNECT, GREEDY, METHODS, PARAM, RouteTable, Rule

EMPTY_SEGMENT_DENIES = ("*//*", "*/?*/")
"""Paths with an empty segment (``a//b``, a trailing ``/``); the root ``GET/`` is not one."""
_MEMO_MAX = 1024

PolicyScope = Literal["stage", "incoming_arn"]
"""What a policy speaks for: the whole API stage (right whichever route API Gateway replays it on), or the
incoming ARN alone (:func:`incoming_only`), which is wrong on other routes if API Gateway caches it by token."""


class RouteResources(NamedTuple):
    """Resource ARNs to allow and to deny explicitly for one principal on one API stage."""

    allow: tuple[str, ...]
    deny: tuple[str, ...]
    policy_scope: PolicyScope = "stage"


class _Suffixes(NamedTuple):
    """A policy relative to the stage prefix (``GET/pets/?*``), the same for every principal of a class."""

    allow: tuple[str, ...]
    deny: tuple[str, ...]


def incoming_only(arn: ExecuteApiArn, permitted: bool) -> RouteResources:
    """A policy about the incoming ARN alone; one with a wildcard character in its path only denies."""
    rest = arn.value[len(arn.api_prefix) :]
    if permitted and not iam.has_wildcard(rest):
        return RouteResources((stage_prefix(arn) + rest,), (), "incoming_arn")
    return RouteResources((), (_literal(arn),), "incoming_arn")


def stage_prefix(arn: ExecuteApiArn) -> str:
    """The stage prefix for policies: a ``*`` stage (console test invocations) matches one character only."""
    return arn.api_prefix.replace("*", "?")


def _literal(arn: ExecuteApiArn) -> str:
    # As a Deny, every wildcard character may stand for itself plus a little more: never less.
    return arn.value.replace("*", "?")


class PolicyBuilder:
    """Builds :class:`RouteResources` for a route table; remembers the policy of each class of principal."""

    def __init__(self, table: RouteTable) -> None:
        self.table = table
        self._memo: dict[tuple[bool, ...], _Suffixes] = {}

    def resources(self, principal: Principal, arn: ExecuteApiArn, permitted: bool) -> RouteResources:
        """The principal's policy for this API stage, deciding the incoming ARN as ``permitted`` says."""
        table = self.table
        prefix = stage_prefix(arn)
        if not table.meets_required(principal):
            return RouteResources((), (prefix + "/*",))
        key = tuple(rule.permits(principal) for rule in table.all_rules)
        suffixes = self._memo.get(key)
        if suffixes is None:
            if len(self._memo) >= _MEMO_MAX:
                self._memo.clear()
            suffixes = self._memo[key] = self._suffixes(principal)
        incoming = arn.value[len(arn.api_prefix) + 1 :]
        if iam.allowed(suffixes.allow, suffixes.deny, incoming) is not permitted:
            return incoming_only(arn, permitted)
        deny = suffixes.deny
        if not permitted and not any(iam.matches(pattern, incoming) for pattern in deny):
            deny = (*deny, incoming.replace("*", "?"))
        return RouteResources(tuple(f"{prefix}/{s}" for s in suffixes.allow), tuple(f"{prefix}/{s}" for s in deny))

    def _suffixes(self, principal: Principal) -> _Suffixes:
        table = self.table
        allowed = [rule for rule in table.rules if rule.permits(principal)]
        denied = [rule for rule in table.rules if not rule.permits(principal)]
        if table.permits(principal, table.default):
            allow, deny = ["*"], [glob for rule in denied for glob in globs(rule)]
        else:
            allow, deny = self._rule_allows(allowed, denied)
        connect = table.permits(principal, table.connect)
        # The router gives $connect only the exact ARN (and "$connect/", the same to the ARN parser).
        if connect and not iam.allowed(allow, deny, CONNECT):
            allow.append(CONNECT)
        elif not connect and iam.allowed(allow, deny, CONNECT):
            deny += [CONNECT, CONNECT + "/"]
        return _Suffixes(iam.simplify(allow), iam.simplify(deny))

    def _rule_allows(self, allowed: list[Rule], denied: list[Rule]) -> tuple[list[str], list[str]]:
        allow: list[str] = []
        deny: list[str] = []
        for rule in allowed:
            if any(iam.has_wildcard(s) for s in rule.segments if s not in (PARAM, GREEDY)):
                continue  # a literal "*" or "?" would be read as a wildcard: leave the route to direct calls
            allow += globs(rule)
            deny += exclusions(rule)
            deny += (g for other in denied if other.priority > rule.priority for g in overlap(rule, other))
        if any("?*" in pattern for pattern in allow):
            deny += EMPTY_SEGMENT_DENIES
        # Denied literal routes, stated: exact, so they never cover an allowed request.
        deny += (glob for rule in denied for glob in self._stated(rule))
        return allow, deny

    def _stated(self, rule: Rule) -> Iterator[str]:
        if any(s in (PARAM, GREEDY) or iam.has_wildcard(s) for s in rule.segments) or rule.methods == {CONNECT}:
            return
        path = "/".join(rule.segments)
        for verb in sorted(rule.methods):
            if self.table.route(verb, path) is rule:
                yield f"{verb}/{path}"


def _path_glob(segments: tuple[str, ...]) -> str:
    return "/".join("?*" if s in (PARAM, GREEDY) else s for s in segments)


def globs(rule: Rule) -> list[str]:
    """Resources (after the stage prefix) matching every request of ``rule``, one per method."""
    if rule.methods == {CONNECT}:
        return [CONNECT]
    path = _path_glob(rule.segments)
    return [f"{verb}/{path}" for verb in sorted(rule.methods)]


def exclusions(rule: Rule) -> list[str]:
    """Denies for the requests :func:`globs` matches only because a ``{param}`` spanned a ``/``."""
    segments = rule.segments
    found: list[str] = []
    for i, segment in enumerate(segments):
        if segment != PARAM or (rule.greedy and all(s in (PARAM, GREEDY) for s in segments[i:])):
            continue
        path = "/".join(("*/*" if j == i else "?*" if s in (PARAM, GREEDY) else s) for j, s in enumerate(segments))
        found += (f"{verb}/{path}" for verb in sorted(rule.methods))
    return found


def overlap(rule: Rule, other: Rule) -> list[str]:
    """Resources covering every request both rules match (empty when they share none)."""
    verbs = rule.methods & other.methods & METHODS
    shared = _intersection(rule.segments, other.segments)
    if not verbs or shared is None:
        return []
    path = _path_glob(shared)
    return [f"{verb}/{path}" for verb in sorted(verbs)]


def _intersection(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...] | None:
    """The segments of the requests both ``a`` and ``b`` match, or ``None`` when there are none."""
    shared: list[str] = []
    for i in range(max(len(a), len(b))):
        if i >= len(a) or i >= len(b):
            return None  # one ended without a greedy tail: the lengths differ
        x, y = a[i], b[i]
        if x == GREEDY:
            return (*shared, *b[i:])
        if y == GREEDY:
            return (*shared, *a[i:])
        if x == PARAM:
            shared.append(y)
        elif y in (PARAM, x):
            shared.append(x)
        else:
            return None
    return tuple(shared)
