"""The seam every identity-provider driver fits: one token in, a :class:`Principal` out, or an error.

A provider states which tokens it claims (:data:`Accepts`, with ``issuers``), so the router can pick
one by the token's form and unverified ``iss`` alone; how each kind is built from the settings is
the driver registry's business (:mod:`idp_authorizer.aws.registry`).
"""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

from idp_authorizer.core.principal import Principal

Accepts = Literal["jwt", "opaque"]
"""Which tokens a provider claims: ``"jwt"``, a compact JWS whose unverified ``iss`` is one of the provider's
``issuers`` (RFC 7519); ``"opaque"``, any other token, judged by asking the IdP (RFC 7662)."""


@runtime_checkable
class Provider(Protocol):
    """An IdP driver. Collaborators come in through the constructor; ``__init__`` does no I/O.

    ``verify`` raises :class:`~idp_authorizer.core.errors.InvalidToken` for a bad token and
    :class:`~idp_authorizer.core.errors.UpstreamUnavailable` when the IdP cannot be asked.
    """

    name: str
    accepts: Accepts
    issuers: frozenset[str]
    """The ``iss`` values a ``"jwt"`` provider owns (one, or a multi-tenant template's expansion); none
    for an ``"opaque"`` provider."""
    cache_seconds: float
    """Longest a positive verdict may be reused (never past the token's ``exp``)."""

    def verify_local(self, token: str) -> Principal | None:
        """Verify without I/O when everything needed is cached; ``None`` when I/O is needed."""
        ...

    async def verify(self, token: str) -> Principal:
        """Verify the token, fetching what is missing."""
        ...

    async def prefetch(self) -> None:
        """Fetch now what ``verify`` would fetch first (discovery, key set) unless it is fresh, and run
        the local verification steps once (initialization, off the request path); raises
        :class:`~idp_authorizer.core.errors.UpstreamUnavailable` when the IdP cannot be asked."""
        ...

    async def close(self) -> None:
        """Release what the provider holds open (HTTP session, shared cache client); idempotent."""
        ...
