"""A cached policy is never wider than the rules: proved over random rule tables, principals and requests.

API Gateway may cache the policy returned for request A and apply it to any later request B of the
same stage (same token or identity sources). This module holds a checker that is independent of the
product: its own router (API Gateway's routing, written from the documentation as a segment walk),
its own IAM evaluator (``*`` any run including ``/``, ``?`` one character, Deny wins), and a
hypothesis test that, for random tables of literal, ``{param}`` and ``{proxy+}`` routes with ``ANY``
and single verbs, ``$default`` and overlaps, replays every policy on many other requests:

    policy(A) allows B  ==>  the rules allow B        (0 over-allows, always)
    policy(A) decides A as the rules do               (except an ARN with * or ? in its path: denied)

It also counts replays where the policy denies what the rules allow (sound but not exact; the README
says which tables are exact). ``IDP_NIGHTLY=1`` runs the nightly-sized version (``-m nightly``).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from types import MappingProxyType

import pytest
from event_factory import http_v2, rest_token
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from iam_oracle import iam_allows

from idp_authorizer.core.events import parse_event
from idp_authorizer.core.outcome import Responder
from idp_authorizer.core.principal import Principal
from idp_authorizer.core.rules import RouteTable

PREFIX = "arn:aws:execute-api:eu-west-1:123456789012:api1/prod"
VERBS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
RULE_VERBS = ("GET", "POST", "DELETE", "ANY")
LITERALS = ("a", "b", "c")
SCOPES = ("s1", "s2", "s3")
CI_EXAMPLES = 2_000
NIGHTLY_EXAMPLES = 50_000


# -- the checker: written from the documentation, sharing no code with the product ---------------------


def route_matches(pattern: str, verb: str, path: str) -> bool:
    """Whether an API Gateway route ``METHOD /path`` serves ``verb`` on ``path`` (the ARN path, no leading /)."""
    method, _, template = pattern.partition(" ")
    if method != verb and not (method == "ANY" and verb in VERBS):  # ANY means the seven HTTP methods
        return False
    parts = template.strip("/").split("/") if template.strip("/") else []
    regex = ""
    for i, part in enumerate(parts):
        sep = "/" if i else ""
        if part.endswith("+}"):
            regex += sep + ".+"  # a greedy tail: one or more characters, "/" included
        elif part.startswith("{"):
            regex += sep + "[^/]+"  # one non-empty segment
        else:
            regex += sep + re.escape(part)
    return re.fullmatch(regex, path, re.DOTALL) is not None


def more_specific(p: str, q: str) -> bool:
    """API Gateway's preference between two routes serving one request: walk the segments from the left
    (literal over {param} over {proxy+}); at a tie, a method-specific route over ANY."""
    ps, qs = p.partition(" ")[2].strip("/").split("/"), q.partition(" ")[2].strip("/").split("/")

    def rank(part: str) -> int:
        return 0 if part.endswith("+}") else 1 if part.startswith("{") else 2

    for a, b in zip(ps, qs, strict=False):
        if rank(a) != rank(b):
            return rank(a) > rank(b)
    if len(ps) != len(qs):
        return len(ps) > len(qs)
    return p.split(" ", maxsplit=1)[0] != "ANY" and q.split(" ", maxsplit=1)[0] == "ANY"


def rules_allow(routes: dict, default: str, required: set, scopes: set, verb: str, path: str) -> bool:
    """The direct decision: the route API Gateway picks, then its scopes (any-of); unrouted → the default."""
    if not required <= scopes:
        return False
    if verb == "$connect" and path == "":  # a WebSocket $connect ARN: its own route or the unlisted default
        if "$connect" not in routes:
            return default == "allow" or not routes
        return not routes["$connect"] or bool(scopes & set(routes["$connect"]))
    served = [p for p in routes if p not in ("$default", "$connect") and route_matches(p, verb, path)]
    best = None
    for p in served:
        if best is None or more_specific(p, best):
            best = p
    if best is None:
        if "$default" in routes:
            best = "$default"
        else:
            return default == "allow" or not routes
    needed = routes[best]
    return not needed or bool(scopes & set(needed))


# -- generated inputs ---------------------------------------------------------------------------------

segment = st.sampled_from((*LITERALS, "{p}"))
route_path = st.tuples(st.lists(segment, max_size=3), st.booleans()).map(
    lambda t: "/" + "/".join(t[0] + (["{proxy+}"] if t[1] else []))
)
route = st.tuples(st.sampled_from(RULE_VERBS), route_path).map(lambda t: f"{t[0]} {t[1]}")
needs = st.lists(st.sampled_from(SCOPES), max_size=2, unique=True)
tables = st.dictionaries(st.one_of(route, st.just("$default"), st.just("$connect")), needs, min_size=1, max_size=7)
request_segment = st.sampled_from((*LITERALS, "x", "", "*", "a?"))
request = st.one_of(
    st.tuples(st.sampled_from(VERBS), st.lists(request_segment, max_size=4).map("/".join)),
    st.tuples(st.just("$connect"), st.sampled_from(("", "x", "a/b"))),  # WebSocket, and odd paths after it
)


def near(routes: dict) -> st.SearchStrategy[tuple[str, str]]:
    """Requests on the edges of the table's routes: parameters spanning "/", empty segments, odd tails."""
    patterns = sorted(p for p in routes if p != "$default")
    if not patterns:
        return request
    value = st.sampled_from((*LITERALS, "x", "", "x/y", "a/", "/a", "*"))

    def fill(pattern: str, draw: st.DrawFn) -> tuple[str, str]:
        method, _, template = pattern.partition(" ")
        parts = [draw(value) if part.startswith("{") else part for part in template.strip("/").split("/") if part]
        verb = draw(st.sampled_from(VERBS)) if method == "ANY" else method
        return verb, "/".join(parts)

    return st.composite(lambda draw: fill(draw(st.sampled_from(patterns)), draw))()


def principal(scopes: set) -> Principal:
    return Principal(
        "u1", "https://issuer.example/", ("api",), frozenset(scopes), 2e9, "test", claims=MappingProxyType({})
    )


def arn_of(verb: str, path: str) -> str:
    """The ARN API Gateway sends: ``…/stage/VERB/path``, and ``…/stage/$connect`` for a WebSocket connect."""
    return f"{PREFIX}/{verb}" if verb == "$connect" and not path else f"{PREFIX}/{verb}/{path}"


def event(verb: str, path: str, shape: str) -> dict:
    arn = arn_of(verb, path)
    if shape == "http-v2":
        return http_v2(None, arn, "$default")
    return rest_token("x", arn)


def check(data: st.DataObject, counts: Counter) -> None:
    routes = data.draw(tables, label="IDP_ROUTES")
    default = data.draw(st.sampled_from(("deny", "allow")), label="IDP_ROUTES_DEFAULT")
    required = set(data.draw(st.lists(st.sampled_from(SCOPES), max_size=1), label="IDP_REQUIRED_SCOPES"))
    scopes = set(data.draw(st.lists(st.sampled_from(SCOPES), max_size=3, unique=True), label="scopes"))
    shape = data.draw(st.sampled_from(("rest-token", "http-v2")), label="shape")
    try:
        table = RouteTable.build(routes, required, allow_unlisted=default == "allow")
    except ValueError:
        counts["tables refused (duplicate routes)"] += 1
        return
    responder = Responder(table, mode="iam")
    who = principal(scopes)
    requests = st.one_of(request, near(routes))
    issued = data.draw(st.lists(requests, min_size=1, max_size=3), label="requests A")
    replayed = data.draw(st.lists(requests, min_size=4, max_size=12), label="requests B")
    counts["examples"] += 1
    counts["routes"] += len(routes)
    for verb, path in issued:
        _, policy = responder.answer(parse_event(event(verb, path, shape)), who)
        direct = rules_allow(routes, default, required, scopes, verb, path)
        allowed = iam_allows(policy, arn_of(verb, path))
        assert not allowed or direct, f"policy for {verb} /{path} allows it against the rules: {policy}"
        if direct and not allowed:
            assert "*" in path or "?" in path, f"{verb} /{path} is allowed by the rules, denied by {policy}"
            counts["incoming wildcard paths denied"] += 1
        counts["policies"] += 1
        for other_verb, other_path in [*replayed, *issued]:
            wanted = rules_allow(routes, default, required, scopes, other_verb, other_path)
            got = iam_allows(policy, arn_of(other_verb, other_path))
            counts["replays"] += 1
            if got and not wanted:
                counts["over-allows"] += 1
                pytest.fail(f"policy for {verb} /{path} replayed on {other_verb} /{other_path} allows it: {policy}")
            counts["exact replays" if got == wanted else "over-denies (sound, not exact)"] += 1


def run(examples: int) -> Counter:
    counts: Counter = Counter()

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.data())
    def property_holds(data: st.DataObject) -> None:
        check(data, counts)

    property_holds()
    return counts


def report(counts: Counter, capsys: pytest.CaptureFixture[str]) -> None:
    with capsys.disabled():
        print("\n[policy soundness] " + ", ".join(f"{name}: {n:,}" for name, n in sorted(counts.items())))


def test_a_replayed_policy_never_allows_what_the_rules_deny(capsys):
    counts = run(CI_EXAMPLES)
    report(counts, capsys)
    assert counts["over-allows"] == 0
    assert counts["examples"] + counts["tables refused (duplicate routes)"] == CI_EXAMPLES
    assert counts["examples"] >= CI_EXAMPLES * 0.9 and counts["replays"] >= 10 * CI_EXAMPLES


@pytest.mark.nightly
@pytest.mark.skipif(os.environ.get("IDP_NIGHTLY") != "1", reason="nightly-sized run: IDP_NIGHTLY=1 pytest -m nightly")
def test_a_replayed_policy_never_allows_what_the_rules_deny_nightly(capsys):
    counts = run(NIGHTLY_EXAMPLES)
    report(counts, capsys)
    assert counts["over-allows"] == 0
