"""Which ``iss`` values a provider accepts: one issuer, or a multi-tenant issuer template.

A multi-tenant IdP signs every tenant's tokens with one key set but puts the tenant in ``iss``:
Microsoft Entra's ``https://login.microsoftonline.com/{tenantid}/v2.0`` (its ``common`` discovery
document publishes that template literally). Accepting any issuer of that shape would accept every
tenant in the world, so a template is bound three ways
(https://learn.microsoft.com/en-us/entra/identity-platform/access-tokens#validate-the-issuer):

- the template, with exactly one ``{tenantid}``, is expanded over the allowed tenants, so accepting
  an issuer stays an exact string comparison (and the router can pick the provider by it);
- the tenant in ``iss`` must equal the token's own tenant claim (Entra: ``tid``): a token whose
  ``iss`` names one tenant and whose ``tid`` another is refused (``tenant_mismatch``);
- an issuer of the template's shape for a tenant not allowed is refused as ``tenant_not_allowed``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from idp_authorizer.core.errors import InvalidToken, Reason

TENANT = "{tenantid}"
"""The placeholder of an issuer template (the spelling of Entra's discovery documents)."""


@dataclass(frozen=True, slots=True)
class Issuers:
    """The accepted issuers: :attr:`pattern` itself, or its expansion over allowed tenants (:meth:`template`)."""

    pattern: str
    tenant_claim: str | None = None
    tenants: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """Each accepted ``iss`` of a template to its tenant; empty for a single issuer."""

    @classmethod
    def template(cls, pattern: str, allowed: Iterable[str], tenant_claim: str = "tid") -> Issuers:
        """``pattern`` (one ``{tenantid}``) for each of the ``allowed`` tenants, bound to ``tenant_claim``."""
        tenants = tuple(allowed)
        if pattern.count(TENANT) != 1:
            raise ValueError(f"an issuer template has exactly one {TENANT}")
        if not tenants or not all(tenants) or any("/" in t or TENANT in t for t in tenants):
            raise ValueError("an issuer template needs the allowed tenants, each a tenant id")
        return cls(pattern, tenant_claim, MappingProxyType({pattern.replace(TENANT, t): t for t in tenants}))

    @property
    def values(self) -> frozenset[str]:
        """Every ``iss`` accepted."""
        return frozenset(self.tenants) if self.tenants else frozenset({self.pattern})

    def check(self, claims: Mapping[str, Any]) -> str:
        """The token's ``iss`` when it is accepted; raises :class:`InvalidToken` naming why it is not."""
        iss = claims.get("iss")
        if not isinstance(iss, str) or (not self.tenants and iss != self.pattern):
            raise InvalidToken(Reason.WRONG_ISSUER, "token issuer is not the expected one")
        if not self.tenants:
            return iss
        tenant = self.tenants.get(iss)
        if tenant is None:
            if self._shaped(iss):
                raise InvalidToken(Reason.TENANT_NOT_ALLOWED, "token tenant is not an allowed tenant")
            raise InvalidToken(Reason.WRONG_ISSUER, "token issuer is not the expected one")
        if claims.get(self.tenant_claim or "") != tenant:
            raise InvalidToken(Reason.TENANT_MISMATCH, "token issuer names another tenant than its tenant claim")
        return iss

    def _shaped(self, iss: str) -> bool:
        prefix, _, suffix = self.pattern.partition(TENANT)
        middle = iss[len(prefix) : len(iss) - len(suffix)] if len(iss) > len(prefix) + len(suffix) else ""
        return iss.startswith(prefix) and iss.endswith(suffix) and bool(middle) and "/" not in middle
