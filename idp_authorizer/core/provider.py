"""The seam every identity-provider driver fits: one token in, a :class:`Principal` out, or an error."""

from __future__ import annotations

from typing import Protocol

from idp_authorizer.core.principal import Principal


class Provider(Protocol):
    """An IdP driver. Collaborators come in through the constructor; ``__init__`` does no I/O.

    ``verify`` raises :class:`~idp_authorizer.core.errors.InvalidToken` for a bad token and
    :class:`~idp_authorizer.core.errors.UpstreamUnavailable` when the IdP cannot be asked.
    """

    name: str
    issuer: str | None
    """The ``iss`` this provider owns (JWT providers), used to route tokens among several providers."""
    cache_seconds: float
    """Longest a positive verdict may be reused (never past the token's ``exp``)."""

    def verify_local(self, token: str) -> Principal | None:
        """Verify without I/O when everything needed is cached; ``None`` when I/O is needed."""
        ...

    async def verify(self, token: str) -> Principal:
        """Verify the token, fetching what is missing."""
        ...
