"""Generic JWT access-token verifier against a JWK Set URL (``IDP_PROVIDER=jwks``).

The OIDC, Auth0, Cognito and Entra providers are this verifier with the key set URL found another
way and, for the last two, their own claim rules: their driver modules derive other
:class:`~providers.driver.Endpoints` and build it with :func:`build_verifier`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from types import MappingProxyType
from typing import Any

from idp_authorizer.core.clock import Clock
from idp_authorizer.core.errors import ConfigurationError, InvalidToken, Reason
from idp_authorizer.core.principal import Principal, has_control_characters, interned, scopes_from_claims
from idp_authorizer.core.provider import Accepts
from idp_authorizer.infra.http import check_url
from idp_authorizer.infra.keyset import JwksStore, KeySetPolicy
from idp_authorizer.jose.issuer import TENANT, Issuers
from idp_authorizer.jose.jwk import VerifyingKey, exercise
from idp_authorizer.jose.jwt import ClaimRules, CompactJws, check_header, decompose
from providers.driver import Driver, Endpoints, Parts, ProviderOptions


class JwksProvider:
    """Verifies JWTs signed by keys of one key set and issued by one issuer."""

    def __init__(
        self,
        name: str,
        store: JwksStore,
        rules: ClaimRules,
        algorithms: Collection[str],
        *,
        required_typ: str | None = None,
        cache_seconds: float = 300.0,
        clock: Clock = time.time,
    ) -> None:
        self.name = name
        self.accepts: Accepts = "jwt"
        self.issuers = rules.issuers.values
        self.cache_seconds = cache_seconds
        self.store = store
        self._rules = rules
        self._algorithms = frozenset(algorithms)
        self._required_typ = required_typ
        self._clock = clock

    async def close(self) -> None:
        await self.store.close()

    async def prefetch(self) -> None:
        """The key set (and, for OIDC, discovery) unless fresh; then each key's verifiers run once."""
        if not self.store.fresh_keys():
            await self.store.refresh()
        for key in self.store.fresh_keys():
            exercise(key)

    def verify_local(self, token: str) -> Principal | None:
        jws = decompose(token)
        alg, kid = check_header(jws.unverified_header, self._algorithms, self._required_typ)
        key = self.store.cached(kid)
        return None if key is None else self._verified(jws, alg, key)

    async def verify(self, token: str) -> Principal:
        jws = decompose(token)
        alg, kid = check_header(jws.unverified_header, self._algorithms, self._required_typ)
        return self._verified(jws, alg, await self.store.get(kid))

    def _verified(self, jws: CompactJws, alg: str, key: VerifyingKey) -> Principal:
        verify = key.verifiers.get(alg)
        if verify is None:
            raise InvalidToken(Reason.ALG_KEY_MISMATCH, "the key with this kid is not for this algorithm")
        if not verify(jws.signing_input, jws.signature):
            raise InvalidToken(Reason.BAD_SIGNATURE, "token signature does not verify")
        claims = jws.unverified_claims  # verified from here on
        checked = self._rules.check(claims, self._clock())
        subject = _subject(claims, checked.client)
        return Principal(
            subject=subject,
            issuer=checked.issuer,
            audiences=interned(checked.audiences),
            scopes=scopes_from_claims(claims),
            expires_at=checked.exp,
            provider=self.name,
            client_id=None if checked.client is None else interned(checked.client),
            kid=key.kid,
            claims=MappingProxyType(claims),
        )


def endpoints(config: ProviderOptions) -> Endpoints:
    """``IDP_JWKS_URL``, for tokens of ``IDP_ISSUER``; no discovery."""
    assert config.issuer is not None
    return Endpoints(config.issuer, "jwks_uri", url=config.jwks_url)


def claim_rules(config: ProviderOptions, where: Endpoints, leeway: float) -> ClaimRules:
    """The generic rules: ``iss`` is the issuer (or, for an issuer template with ``{tenantid}``, one of
    ``allowed_tenants`` bound to ``tenant_claim``), ``aud`` any of ``IDP_AUDIENCE``, the client one of
    ``IDP_CLIENT_IDS`` when set."""
    assert where.issuer is not None
    if TENANT in where.issuer:
        try:
            issuers = Issuers.template(where.issuer, config.allowed_tenants, config.tenant_claim)
        except ValueError as exc:
            raise ConfigurationError(Reason.CONFIGURATION_ERROR, f"IDP_ISSUER, IDP_ALLOWED_TENANTS: {exc}") from None
    elif config.allowed_tenants:
        raise ConfigurationError(
            Reason.CONFIGURATION_ERROR, f"IDP_ALLOWED_TENANTS needs an IDP_ISSUER template with {TENANT}"
        )
    else:
        issuers = Issuers(where.issuer)
    return ClaimRules(issuers, frozenset(config.audience), leeway, clients=frozenset(config.client_ids))


def build_verifier(config: ProviderOptions, parts: Parts, where: Endpoints, rules: ClaimRules) -> JwksProvider:
    """The verifier of ``rules``, its keys from ``where.url`` or else from ``where.issuer``'s discovery."""
    settings = parts.settings
    assert where.issuer is not None
    source: str | Callable[[], Awaitable[str]]
    if where.url is not None:
        source = check_url(where.url, "IDP_JWKS_URL", allow_loopback_http=settings.allow_loopback_http)
    else:
        source = parts.discovery(where.issuer).jwks_uri
    policy = KeySetPolicy(
        max_age=settings.jwks_max_age_seconds,
        cooldown=settings.jwks_cooldown_seconds,
        stale_seconds=settings.jwks_stale_seconds,
    )
    store = JwksStore(parts.http, source, config.algorithms, policy, parts.clock, shared=parts.documents("jwks"))
    return JwksProvider(
        config.label,
        store,
        rules,
        config.algorithms,
        required_typ=config.required_typ,
        cache_seconds=settings.token_cache_seconds,
        clock=parts.clock,
    )


RulesFor = Callable[[ProviderOptions, Endpoints, float], ClaimRules]
"""How a driver derives its claim rules from its settings, its endpoints and the leeway."""


def jwt_driver(endpoints: Callable[[ProviderOptions], Endpoints], rules: RulesFor = claim_rules) -> Driver:
    """The driver of a JWT provider: keys where ``endpoints`` says, claims checked by ``rules`` (no I/O)."""

    def build(config: ProviderOptions, parts: Parts) -> JwksProvider:
        where = endpoints(config)
        return build_verifier(config, parts, where, rules(config, where, parts.settings.leeway_seconds))

    return Driver(endpoints, build)


DRIVER = jwt_driver(endpoints)


def _subject(claims: Mapping[str, Any], client: str | None) -> str:
    """The token's subject: ``sub``, else its client (a client-credentials token may carry no ``sub``).

    Subject and client can reach the backend (``principalId``, and request headers through mapping
    templates), so a control character in either refuses the token; the issuer needs no check: it is
    one of the configured ones exactly.
    """
    subject = claims.get("sub", client)
    if not isinstance(subject, str) or not subject:
        raise InvalidToken(Reason.MISSING_SUB, "token names no subject")
    if has_control_characters(subject) or (client is not None and has_control_characters(client)):
        raise InvalidToken(Reason.CONTROL_CHARACTERS, "token subject or client id holds control characters")
    return subject
