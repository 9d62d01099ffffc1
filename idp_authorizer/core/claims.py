"""Claim names as route rules, the authorizer context and the usage identifier name them. Pure.

IdPs shape claims differently: Cognito's ``cognito:groups`` and Entra's ``roles`` are top-level lists,
Keycloak nests roles (``realm_access.roles``, ``resource_access.{client}.roles``), and namespaced
claims are URLs (``https://example.com/roles``). One syntax names all of them:

- a name that does not start with ``/`` is one top-level claim, taken literally: ``cognito:groups``,
  ``https://example.com/roles``, ``realm_access.roles`` (a claim whose name has a dot);
- a name that starts with ``/`` is a JSON Pointer (RFC 6901) into nested objects:
  ``/realm_access/roles``, ``/resource_access/orders-api/roles``; ``~1`` stands for ``/`` and ``~0``
  for ``~`` inside a member name (``/https:~1~1example.com~1claims/roles``).

A pointer walks objects only (no array indexes); a missing member, or a non-object on the way, is an
absent claim. In ``IDP_CONTEXT_CLAIMS`` a pointer can be given a context key, ``roles=/realm_access/roles``,
so a mapping template can read it as ``$context.authorizer.roles``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NamedTuple

_CONTEXT_KEY = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_ESCAPE = re.compile(r"~(?![01])")


class ClaimPath(NamedTuple):
    """One claim, named as configured (:attr:`name`), and the member names that lead to it (:attr:`keys`)."""

    name: str
    keys: tuple[str, ...]

    @property
    def top(self) -> str:
        """The top-level claim it lives in (what a cached verdict must keep for it)."""
        return self.keys[0]

    def of(self, claims: Mapping[str, Any]) -> Any:
        """The claim's value in ``claims``; ``None`` when it is absent."""
        value: Any = claims
        for key in self.keys:
            if not isinstance(value, Mapping):
                return None
            value = value.get(key)
        return value


def claim_path(name: str) -> ClaimPath:
    """Parse one claim name (see the module docstring); raises ``ValueError`` for a malformed pointer."""
    if not name:
        raise ValueError("a claim name is empty")
    if not name.startswith("/"):
        return ClaimPath(name, (name,))
    keys = tuple(part.replace("~1", "/").replace("~0", "~") for part in name[1:].split("/"))
    if _ESCAPE.search(name) or not all(keys):
        raise ValueError(f"claim {name!r}: a JSON Pointer's members are non-empty, with '~' only as ~0 or ~1")
    return ClaimPath(name, keys)


def context_claim(spec: str) -> ClaimPath:
    """One ``IDP_CONTEXT_CLAIMS`` entry: a claim name, or ``key=/pointer`` to give a pointer a context key."""
    key, sep, pointer = spec.partition("=")
    if not sep or not pointer.startswith("/"):
        return claim_path(spec)
    if not _CONTEXT_KEY.fullmatch(key):
        raise ValueError(f"context claim {spec!r}: the key before '=' is 1 to 64 of A-Z a-z 0-9 _ . : -")
    return ClaimPath(key, claim_path(pointer).keys)
