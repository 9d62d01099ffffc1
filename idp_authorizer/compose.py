"""The composition root: settings in, a ready :class:`Authorizer` out. No I/O here.

Each provider kind's driver is imported only when configured, so a cold start pays for one driver.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from idp_authorizer.cache import BoundedMemoryCache
from idp_authorizer.clock import Clock
from idp_authorizer.errors import ConfigurationError
from idp_authorizer.http import HttpClient, check_url
from idp_authorizer.log import DecisionLog
from idp_authorizer.outcome import Responder
from idp_authorizer.runtime import Authorizer, CachePolicy, ProviderRouter
from idp_authorizer.settings import ProviderConfig, Settings

if TYPE_CHECKING:
    from idp_authorizer.metrics import Metrics
    from idp_authorizer.provider import Provider


def build_authorizer(settings: Settings, *, clock: Clock = time.time, http: HttpClient | None = None) -> Authorizer:
    """Build every collaborator from ``settings``; raises :class:`ConfigurationError` for a bad value."""
    if not settings.cache_url.startswith("memory://"):
        raise ConfigurationError("configuration_error", "IDP_CACHE_URL: only memory:// is supported by this build")
    metrics: Metrics | None = None
    if settings.metrics:
        from idp_authorizer.metrics import instrument

        metrics, http = instrument(settings, http, clock)
    http = http or HttpClient(
        timeout=settings.http_timeout_seconds,
        connect_timeout=settings.http_connect_timeout_seconds,
        max_bytes=settings.http_max_response_bytes,
    )
    providers = [build_provider(config, settings, http, clock) for config in settings.provider_configs()]
    if metrics is not None:
        metrics.watch_providers(providers)
    names = [p.name for p in providers]
    if len(set(names)) != len(names):
        raise ConfigurationError("configuration_error", "IDP_PROVIDERS: give each provider a distinct name")
    issuers = [p.issuer for p in providers if p.issuer is not None]
    if len(set(issuers)) != len(issuers):
        raise ConfigurationError("configuration_error", "IDP_PROVIDERS: each issuer may have one provider only")
    responder = Responder(
        settings.route_table(), settings.response, settings.context_claims, settings.usage_identifier_claim
    )
    return Authorizer(
        ProviderRouter(providers),
        responder,
        sources=settings.token_sources,
        cache=BoundedMemoryCache(max_entries=settings.cache_max_entries, clock=clock),
        cache_policy=CachePolicy(negative_seconds=settings.negative_cache_seconds),
        max_token_bytes=settings.max_token_bytes,
        decision_log=DecisionLog(settings.log_level),
        metrics=metrics,
        clock=clock,
    )


def build_provider(config: ProviderConfig, settings: Settings, http: HttpClient, clock: Clock) -> Provider:
    """One provider driver, imported lazily by kind."""
    if config.provider == "introspection":
        raise ConfigurationError("configuration_error", "IDP_PROVIDER: introspection is not available in this build")
    return _jwt_provider(config, settings, http, clock)


def _jwt_provider(config: ProviderConfig, settings: Settings, http: HttpClient, clock: Clock) -> Provider:
    from idp_authorizer.jwks import JwksStore, KeySetPolicy
    from idp_authorizer.jwt import ClaimRules
    from providers.jwks import JwksProvider

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
        from providers.oidc import Discovery

        assert config.issuer is not None
        issuer = config.issuer
        discovery = Discovery(
            http, issuer, max_age=settings.jwks_max_age_seconds, allow_loopback_http=loopback, clock=clock
        )
        source = discovery.jwks_uri
    else:
        assert config.issuer is not None and config.jwks_url is not None
        issuer = config.issuer
        source = check_url(config.jwks_url, "IDP_JWKS_URL", allow_loopback_http=loopback)
    policy = KeySetPolicy(
        max_age=settings.jwks_max_age_seconds,
        cooldown=settings.jwks_cooldown_seconds,
        stale_seconds=settings.jwks_stale_seconds,
    )
    store = JwksStore(http, source, config.algorithms, policy, clock)  # type: ignore[arg-type]
    rules = ClaimRules(issuer, frozenset(config.audience), settings.leeway_seconds)
    return JwksProvider(
        config.label,
        store,
        rules,
        config.algorithms,
        required_typ=config.required_typ,
        cache_seconds=settings.token_cache_seconds,
        clock=clock,
    )
