"""The composition root: settings in, a ready :class:`Authorizer` out. No I/O here.

Each provider kind's driver is imported only when configured, so a cold start pays for one driver;
the shared cache tier's client library (redis, aiomcache) only when ``IDP_CACHE_URL`` names it.
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from idp_authorizer.aws.router import ProviderRouter
from idp_authorizer.aws.runtime import Authorizer
from idp_authorizer.aws.settings import ProviderConfig, Settings
from idp_authorizer.core.clock import Clock
from idp_authorizer.core.errors import ConfigurationError
from idp_authorizer.core.outcome import Responder
from idp_authorizer.infra.cache import BoundedMemoryCache
from idp_authorizer.infra.http import HttpClient, check_url
from idp_authorizer.infra.log import DecisionLog

if TYPE_CHECKING:
    from idp_authorizer.core.provider import Provider
    from idp_authorizer.infra.metrics import Metrics
    from idp_authorizer.infra.shared_cache import SharedDocuments, SharedTier
    from providers.oidc import Discovery


@dataclass
class Collaborators:
    """What every provider of one authorizer shares: settings, HTTP client, clock and both cache tiers."""

    settings: Settings
    http: HttpClient
    clock: Clock
    cache: BoundedMemoryCache
    shared: SharedTier | None = None
    _discoveries: dict[str, Discovery] = field(default_factory=dict)

    def documents(self, kind: str) -> SharedDocuments | None:
        if self.shared is None:
            return None
        from idp_authorizer.infra.shared_cache import SharedDocuments

        return SharedDocuments(self.shared, kind)

    def discovery(self, issuer: str) -> Discovery:
        """One discovery document per issuer, however many providers read it (JWT keys, introspection)."""
        from providers.oidc import Discovery

        if issuer not in self._discoveries:
            self._discoveries[issuer] = Discovery(
                self.http,
                issuer,
                max_age=self.settings.jwks_max_age_seconds,
                allow_loopback_http=self.settings.allow_loopback_http,
                clock=self.clock,
                shared=self.documents("discovery"),
            )
        return self._discoveries[issuer]


def _shared_tier(url: str, clock: Clock) -> SharedTier | None:
    """The shared cache tier, its module imported only when ``IDP_CACHE_URL`` names one."""
    if url == "memory://":
        return None
    from idp_authorizer.infra.shared_cache import open_shared_tier

    return open_shared_tier(url, clock=clock)


def build_authorizer(settings: Settings, *, clock: Clock = time.time, http: HttpClient | None = None) -> Authorizer:
    """Build every collaborator from ``settings``; raises :class:`ConfigurationError` for a bad value."""
    metrics: Metrics | None = None
    if settings.metrics:
        metrics, http = _instrument(settings, http, clock)
    http = http or HttpClient(
        timeout=settings.http_timeout_seconds,
        connect_timeout=settings.http_connect_timeout_seconds,
        max_bytes=settings.http_max_response_bytes,
    )
    cache = BoundedMemoryCache(max_entries=settings.cache_max_entries, clock=clock)
    parts = Collaborators(settings, http, clock, cache, _shared_tier(settings.cache_url, clock))
    providers = [build_provider(config, parts) for config in settings.provider_configs()]
    if metrics is not None:
        metrics.watch_providers(providers)
    _check_distinct(providers)
    responder = Responder(
        settings.route_table(), settings.response, settings.context_claims, settings.usage_identifier_claim
    )
    return Authorizer(
        ProviderRouter(providers),
        responder,
        sources=settings.token_sources,
        cache=cache,
        negative_seconds=settings.negative_cache_seconds,
        max_token_bytes=settings.max_token_bytes,
        decision_log=DecisionLog(settings.log_level, decisions=settings.log_decisions),
        metrics=metrics,
        clock=clock,
    )


def _instrument(settings: Settings, http: HttpClient | None, clock: Clock) -> tuple[Metrics, HttpClient]:
    """The metrics sink and an HTTP client that times IdP calls into it (imported only when metrics are on).

    The ``Service`` dimension is the Lambda function's name, so several authorizers can share a namespace.
    """
    from idp_authorizer.infra.metrics import Metrics, TimedHttpClient

    introspection = {c.label for c in settings.provider_configs() if c.provider == "introspection"}
    service = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "idp-authorizer")
    metrics = Metrics(settings.metrics_namespace, service, introspection_providers=introspection, clock=clock)
    return metrics, http or TimedHttpClient(
        metrics,
        timeout=settings.http_timeout_seconds,
        connect_timeout=settings.http_connect_timeout_seconds,
        max_bytes=settings.http_max_response_bytes,
    )


def _check_distinct(providers: list[Provider]) -> None:
    names = [p.name for p in providers]
    if len(set(names)) != len(names):
        raise ConfigurationError("configuration_error", "IDP_PROVIDERS: give each provider a distinct name")
    issuers = [p.issuer for p in providers if p.issuer is not None]
    if len(set(issuers)) != len(issuers):
        raise ConfigurationError("configuration_error", "IDP_PROVIDERS: each issuer may have one provider only")
    if len(providers) - len(issuers) > 1:
        # Opaque tokens carry nothing to choose between two introspection endpoints by.
        raise ConfigurationError("configuration_error", "IDP_PROVIDERS: configure one introspection provider at most")


def build_provider(config: ProviderConfig, parts: Collaborators) -> Provider:
    """One provider driver, imported lazily by kind."""
    if config.provider == "introspection":
        return _introspection_provider(config, parts)
    return _jwt_provider(config, parts)


def _introspection_provider(config: ProviderConfig, parts: Collaborators) -> Provider:
    from providers.introspection import ClientCredentials, Endpoint, IntrospectionProvider, IntrospectionRules

    settings = parts.settings
    assert config.client_id is not None and config.client_secret is not None
    endpoint: Endpoint
    if config.introspection_url is not None:
        loopback = settings.allow_loopback_http
        endpoint = check_url(config.introspection_url, "IDP_INTROSPECTION_URL", allow_loopback_http=loopback)
    else:
        assert config.issuer is not None
        endpoint = functools.partial(parts.discovery(config.issuer).endpoint, "introspection_endpoint")
    credentials = ClientCredentials(config.client_id, config.client_secret.get_secret_value(), config.client_auth)
    return IntrospectionProvider(
        config.label,
        parts.http,
        endpoint,
        credentials,
        IntrospectionRules(config.issuer, frozenset(config.audience), settings.leeway_seconds),
        cache=parts.cache,
        shared=parts.shared,
        cache_seconds=settings.introspection_cache_seconds,
        negative_seconds=settings.negative_cache_seconds,
        clock=parts.clock,
    )


def _jwt_provider(config: ProviderConfig, parts: Collaborators) -> Provider:
    from idp_authorizer.infra.keyset import JwksStore, KeySetPolicy
    from idp_authorizer.jose.jwt import ClaimRules
    from providers.jwks import JwksProvider

    settings = parts.settings
    loopback = settings.allow_loopback_http
    if config.provider == "auth0":
        from providers.auth0 import auth0_issuer, auth0_jwks_url

        assert config.auth0_domain is not None
        try:
            issuer, url = auth0_issuer(config.auth0_domain), auth0_jwks_url(config.auth0_domain)
        except ValueError as exc:
            raise ConfigurationError("configuration_error", str(exc)) from None
        source: object = url
    elif config.provider == "oidc" and config.jwks_url is None:
        assert config.issuer is not None
        issuer = config.issuer
        source = parts.discovery(issuer).jwks_uri
    else:
        assert config.issuer is not None and config.jwks_url is not None
        issuer = config.issuer
        source = check_url(config.jwks_url, "IDP_JWKS_URL", allow_loopback_http=loopback)
    policy = KeySetPolicy(
        max_age=settings.jwks_max_age_seconds,
        cooldown=settings.jwks_cooldown_seconds,
        stale_seconds=settings.jwks_stale_seconds,
    )
    store = JwksStore(
        parts.http,
        source,  # type: ignore[arg-type]
        config.algorithms,
        policy,
        parts.clock,
        shared=parts.documents("jwks"),
    )
    rules = ClaimRules(issuer, frozenset(config.audience), settings.leeway_seconds)
    return JwksProvider(
        config.label,
        store,
        rules,
        config.algorithms,
        required_typ=config.required_typ,
        cache_seconds=settings.token_cache_seconds,
        clock=parts.clock,
    )
