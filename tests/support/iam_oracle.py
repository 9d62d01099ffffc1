"""How IAM judges a request under a returned policy: written from the documentation, sharing no code
with the product (``idp_authorizer.core.iam`` is what it checks)."""

from __future__ import annotations

import re
from typing import Any


def iam_allows(policy: dict[str, Any], resource: str) -> bool:
    """Whether ``resource`` is allowed by the policy document: an explicit Deny wins, then an Allow.

    In a resource ``*`` matches any run of characters (``/`` included) and ``?`` one character.
    """

    def hit(pattern: str) -> bool:
        regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
        return re.fullmatch(regex, resource, re.DOTALL) is not None

    effects = {"Allow": False, "Deny": False}
    for statement in policy["policyDocument"]["Statement"]:
        assert statement["Action"] == "execute-api:Invoke"
        effects[statement["Effect"]] |= any(hit(r) for r in statement["Resource"])
    return effects["Allow"] and not effects["Deny"]
