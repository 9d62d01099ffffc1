"""Which provider judges a token: by its unverified ``iss`` for JWTs, introspection for the rest."""

from __future__ import annotations

from collections.abc import Sequence

from idp_authorizer.core.errors import InvalidToken
from idp_authorizer.core.provider import Provider
from idp_authorizer.jose.jwt import decompose, is_compact_jws


class ProviderRouter:
    """Picks the provider for a token: by unverified ``iss`` for JWTs, introspection for the rest.

    The issuer only selects; the chosen provider then verifies everything with its own keys, so a
    token cannot borrow another issuer's trust.
    """

    def __init__(self, providers: Sequence[Provider]) -> None:
        self.providers = tuple(providers)
        self._by_issuer = {p.issuer: p for p in providers if p.issuer is not None}
        self._opaque = next((p for p in providers if p.issuer is None), None)

    @property
    def introspector(self) -> Provider | None:
        """The provider that judges tokens by asking the IdP (the one not bound to an issuer)."""
        return self._opaque

    def select(self, token: str) -> Provider:
        if len(self.providers) == 1:
            return self.providers[0]
        if not is_compact_jws(token):
            if self._opaque is None:
                raise InvalidToken("malformed_token", "not a JWT and no introspection provider is configured")
            return self._opaque
        issuer = decompose(token).unverified_claims.get("iss")
        provider = self._by_issuer.get(issuer) if isinstance(issuer, str) else None
        if provider is None:
            raise InvalidToken("unknown_issuer", "no provider is configured for the token issuer")
        return provider
