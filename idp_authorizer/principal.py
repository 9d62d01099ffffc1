"""The ``Principal``: what a provider learned about a valid token."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True, slots=True)
class Principal:
    """A verified identity, the same shape whatever provider produced it.

    ``claims`` is a read-only view of the verified claims (or the introspection response);
    ``expires_at`` is the token's ``exp`` (epoch seconds), the hard upper bound of any caching.
    """

    subject: str
    issuer: str
    audiences: tuple[str, ...]
    scopes: frozenset[str]
    expires_at: float
    provider: str
    client_id: str | None = None
    kid: str | None = None
    claims: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), compare=False)


def scopes_from_claims(claims: Mapping[str, Any]) -> frozenset[str]:
    """Scopes from ``scope`` (RFC 8693/9068, space-separated), ``scp`` (string or list) and ``permissions`` (Auth0)."""
    found: set[str] = set()
    for name in ("scope", "scp", "permissions"):
        value = claims.get(name)
        if isinstance(value, str):
            found.update(value.split())
        elif isinstance(value, list):
            found.update(item for item in value if isinstance(item, str))
    return frozenset(found)
