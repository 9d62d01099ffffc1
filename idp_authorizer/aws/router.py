"""Which provider judges a token: each provider states what it claims (:data:`~idp_authorizer.core.provider.Accepts`).

A ``"jwt"`` provider claims the compact JWSs whose unverified ``iss`` is one of its ``issuers``; the one
``"opaque"`` provider (introspection) claims every other token. The table is checked when built, so
no token can have two judges.
"""

from __future__ import annotations

from collections.abc import Sequence

from idp_authorizer.core.errors import ConfigurationError, InvalidToken, Reason
from idp_authorizer.core.provider import Provider
from idp_authorizer.jose.jwt import decompose, is_compact_jws


class ProviderRouter:
    """Picks the provider for a token: by unverified ``iss`` for JWTs, introspection for the rest.

    The issuer only selects; the chosen provider then verifies everything with its own keys, so a
    token cannot borrow another issuer's trust. Raises :class:`ConfigurationError` for two providers
    of one name or one issuer, or two introspection providers.
    """

    def __init__(self, providers: Sequence[Provider]) -> None:
        self.providers = tuple(providers)
        self._by_issuer, self._opaque = _table(self.providers)

    @property
    def introspector(self) -> Provider | None:
        """The provider that judges tokens by asking the IdP (the one that accepts opaque tokens)."""
        return self._opaque

    def select(self, token: str) -> Provider:
        if len(self.providers) == 1:
            return self.providers[0]
        if not is_compact_jws(token):
            if self._opaque is None:
                raise InvalidToken(Reason.MALFORMED_TOKEN, "not a JWT and no introspection provider is configured")
            return self._opaque
        issuer = decompose(token).unverified_claims.get("iss")
        provider = self._by_issuer.get(issuer) if isinstance(issuer, str) else None
        if provider is None:
            raise InvalidToken(Reason.UNKNOWN_ISSUER, "no provider is configured for the token issuer")
        return provider


def _table(providers: Sequence[Provider]) -> tuple[dict[str, Provider], Provider | None]:
    """The JWT providers by the ``iss`` each owns, and the opaque-token provider; each claim has one owner."""
    names = [p.name for p in providers]
    if len(set(names)) != len(names):
        raise ConfigurationError(Reason.CONFIGURATION_ERROR, "IDP_PROVIDERS: give each provider a distinct name")
    by_issuer: dict[str, Provider] = {}
    for provider in (p for p in providers if p.accepts == "jwt"):
        if not provider.issuers:
            raise ConfigurationError(
                Reason.CONFIGURATION_ERROR, f"provider {provider.name!r} accepts JWTs, names no issuer"
            )
        if not provider.issuers.isdisjoint(by_issuer):
            raise ConfigurationError(
                Reason.CONFIGURATION_ERROR, "IDP_PROVIDERS: each issuer may have one provider only"
            )
        by_issuer.update(dict.fromkeys(provider.issuers, provider))
    opaque = [p for p in providers if p.accepts == "opaque"]
    if len(opaque) > 1:
        # Opaque tokens carry nothing to choose between two introspection endpoints by.
        raise ConfigurationError(
            Reason.CONFIGURATION_ERROR, "IDP_PROVIDERS: configure one introspection provider at most"
        )
    return by_issuer, opaque[0] if opaque else None
