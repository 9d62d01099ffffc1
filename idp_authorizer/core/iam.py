"""IAM resource matching as API Gateway applies an authorizer's policy to a request. Pure.

https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html and
https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-control-access-using-iam-policies-to-invoke-api.html:
in a resource ARN ``*`` matches any run of characters, ``/`` included, and ``?`` exactly one
character; an explicit Deny wins over any Allow; no matching Allow is an implicit deny. There is no
escape for a literal ``*`` or ``?``: a policy must never carry one it does not mean as a wildcard.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

WILDCARDS = frozenset("*?")


def has_wildcard(text: str) -> bool:
    return "*" in text or "?" in text


@lru_cache(maxsize=4096)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern), re.DOTALL)


def matches(pattern: str, resource: str) -> bool:
    """Whether the IAM resource ``pattern`` matches the concrete ARN ``resource``."""
    return _regex(pattern).fullmatch(resource) is not None


@lru_cache(maxsize=4096)
def _cover_regex(pattern: str) -> re.Pattern[str]:
    # Read the other pattern as text: its "*" can only be absorbed by a "*" here, its "?" by "?" or "*".
    return re.compile("".join(".*" if c == "*" else r"[^*]" if c == "?" else re.escape(c) for c in pattern), re.DOTALL)


def covers(general: str, specific: str) -> bool:
    """Whether every ARN ``specific`` matches also matches ``general`` (a sound test: ``True`` is proof).

    It may answer ``False`` for some patterns that do cover each other; callers only lose a
    simplification then, never a statement's meaning.
    """
    return _cover_regex(general).fullmatch(specific) is not None


def allowed(allow: Iterable[str], deny: Iterable[str], resource: str) -> bool:
    """Explicit Deny wins, then an Allow, else the implicit deny: how IAM judges one request."""
    if any(matches(pattern, resource) for pattern in deny):
        return False
    return any(matches(pattern, resource) for pattern in allow)


def simplify(patterns: Iterable[str]) -> tuple[str, ...]:
    """The patterns without those another one covers (a smaller statement with the same meaning)."""
    unique = list(dict.fromkeys(patterns))
    return tuple(
        p for i, p in enumerate(unique) if not any(_drops(o, p, j < i) for j, o in enumerate(unique) if j != i)
    )


def _drops(other: str, pattern: str, other_first: bool) -> bool:
    # Of two patterns that cover each other, the first one stays.
    return covers(other, pattern) and (other_first or not covers(pattern, other))
