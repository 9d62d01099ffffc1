"""Generic JWT access-token verifier against a JWK Set URL (``IDP_PROVIDER=jwks``).

The OIDC and Auth0 providers are this verifier with the key set URL found another way: their driver
modules derive other :class:`~providers.driver.Endpoints` and build it with :func:`build_verifier`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from types import MappingProxyType
from typing import Any

from idp_authorizer.core.clock import Clock
from idp_authorizer.core.errors import InvalidToken, Reason
from idp_authorizer.core.principal import Principal, has_control_characters, interned, scopes_from_claims
from idp_authorizer.core.provider import Accepts
from idp_authorizer.infra.http import check_url
from idp_authorizer.infra.keyset import JwksStore, KeySetPolicy
from idp_authorizer.jose.jwk import VerifyingKey
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
        self.issuer: str | None = rules.issuer
        self.cache_seconds = cache_seconds
        self.store = store
        self._rules = rules
        self._algorithms = frozenset(algorithms)
        self._required_typ = required_typ
        self._clock = clock

    async def close(self) -> None:
        await self.store.close()

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
        exp, audiences = self._rules.check(claims, self._clock())
        subject, client_id = _identity(claims)
        return Principal(
            subject=subject,
            issuer=self._rules.issuer,
            audiences=interned(audiences),
            scopes=scopes_from_claims(claims),
            expires_at=exp,
            provider=self.name,
            client_id=None if client_id is None else interned(client_id),
            kid=key.kid,
            claims=MappingProxyType(claims),
        )


def endpoints(config: ProviderOptions) -> Endpoints:
    """``IDP_JWKS_URL``, for tokens of ``IDP_ISSUER``; no discovery."""
    assert config.issuer is not None
    return Endpoints(config.issuer, "jwks_uri", url=config.jwks_url)


def build(config: ProviderOptions, parts: Parts) -> JwksProvider:
    return build_verifier(config, parts, endpoints(config))


def build_verifier(config: ProviderOptions, parts: Parts, where: Endpoints) -> JwksProvider:
    """The verifier for tokens of ``where.issuer``, its keys from ``where.url`` or else from discovery."""
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
        ClaimRules(where.issuer, frozenset(config.audience), settings.leeway_seconds),
        config.algorithms,
        required_typ=config.required_typ,
        cache_seconds=settings.token_cache_seconds,
        clock=parts.clock,
    )


DRIVER = Driver(endpoints, build)


def _identity(claims: Mapping[str, Any]) -> tuple[str, str | None]:
    """``(subject, client_id)`` of verified claims: ``sub``, else the client (``client_id``, else ``azp``).

    Both can reach the backend (``principalId``, and request headers through mapping templates), so
    a control character in either refuses the token; the issuer needs no check: it equals the
    configured one exactly.
    """
    client_id = claims.get("client_id", claims.get("azp"))
    subject = claims.get("sub", client_id)
    if not isinstance(subject, str) or not subject:
        raise InvalidToken(Reason.MISSING_SUB, "token names no subject")
    client = client_id if isinstance(client_id, str) else None
    if has_control_characters(subject) or (client is not None and has_control_characters(client)):
        raise InvalidToken(Reason.CONTROL_CHARACTERS, "token subject or client id holds control characters")
    return subject, client
