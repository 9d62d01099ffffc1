"""The composition root: settings in, a ready :class:`Authorizer` out. No I/O here.

Each configured provider is built by its kind's driver (:mod:`idp_authorizer.aws.registry`), whose
module is imported only then, so a cold start pays for one driver; the shared cache tier's client
library (redis, aiomcache) only when ``IDP_CACHE_URL`` names it. :class:`Collaborators` is what the
drivers are given (it fits :class:`providers.driver.Parts`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from idp_authorizer.aws.registry import build_provider
from idp_authorizer.aws.router import ProviderRouter
from idp_authorizer.aws.runtime import Authorizer
from idp_authorizer.aws.settings import Settings
from idp_authorizer.core.clock import Clock
from idp_authorizer.core.errors import ConfigurationError, Reason, UpstreamUnavailable
from idp_authorizer.core.outcome import Responder
from idp_authorizer.core.rules import RouteTable
from idp_authorizer.infra.cache import BoundedMemoryCache
from idp_authorizer.infra.http import HttpClient, check_url, tls_context
from idp_authorizer.infra.log import DecisionLog
from idp_authorizer.infra.remote_document import RemoteDocument
from idp_authorizer.infra.sender import SenderConstraints

if TYPE_CHECKING:
    from idp_authorizer.core.provider import Provider
    from idp_authorizer.infra.metrics import Metrics
    from idp_authorizer.infra.route_source import RouteSource
    from idp_authorizer.infra.shared_cache import SharedDocuments, SharedTier
    from providers.discovery import Discovery


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

    def discoveries(self) -> tuple[Discovery, ...]:
        """Every discovery document built so far (the scheduled refresh keeps them fresh)."""
        return tuple(self._discoveries.values())

    def discovery(self, issuer: str) -> Discovery:
        """One discovery document per issuer, however many providers read it (JWT keys, introspection)."""
        from providers.discovery import Discovery

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
    http = http or HttpClient(**http_options(settings))
    cache = BoundedMemoryCache(max_entries=settings.cache_max_entries, clock=clock)
    parts = Collaborators(settings, http, clock, cache, _shared_tier(settings.cache_url, clock))
    providers = [build_provider(config, parts) for config in settings.provider_configs()]
    if metrics is not None:
        metrics.watch_providers(providers)
    router = ProviderRouter(providers)
    authorizer = Authorizer(
        router,
        responder(settings, settings.route_table()),
        sources=settings.token_sources,
        cache=cache,
        negative_seconds=settings.negative_cache_seconds,
        max_token_bytes=settings.max_token_bytes,
        decision_log=DecisionLog(settings.log_level, decisions=settings.log_decisions),
        metrics=metrics,
        sender=SenderConstraints(
            algorithms=settings.dpop_algorithms,
            max_age=settings.dpop_max_age_seconds,
            leeway=settings.leeway_seconds,
            replay=BoundedMemoryCache(max_entries=settings.cache_max_entries, clock=clock),
            shared=parts.shared,
            clock=clock,
        ),
        require_sender_constrained=settings.require_sender_constrained,
        clock=clock,
    )
    authorizer.documents = _documents(parts, providers)
    if settings.routes_url is not None:
        authorizer.routes = route_source(settings, http, clock, router.introspector is not None, authorizer.path.adopt)
        authorizer.path.ready = False
    return authorizer


def _documents(parts: Collaborators, providers: list[Provider]) -> tuple[RemoteDocument[Any], ...]:
    """The discovery documents and key sets the providers fetch, for the scheduled refresh."""
    # Read off the JWT providers' key stores without importing the key-set module for a provider that has none.
    found = (getattr(getattr(p, "store", None), "document", None) for p in providers)
    stores = [document for document in found if isinstance(document, RemoteDocument)]
    return (*(d.remote for d in parts.discoveries()), *stores)


def responder(settings: Settings, table: RouteTable) -> Responder:
    """How decisions are rendered: ``table``'s rules with the response and context settings."""
    context_claims, usage_claim = settings.claim_paths()
    return Responder(table, settings.response, context_claims, usage_claim, inject_context=settings.inject_context)


def route_source(
    settings: Settings,
    http: HttpClient,
    clock: Clock,
    introspection: bool,
    on_change: Callable[[Responder], None] = lambda _: None,
) -> RouteSource[Responder]:
    """The rules of ``IDP_ROUTES_URL`` (the runtime and the doctor load them alike); no I/O here."""
    from idp_authorizer.infra.route_source import APPCONFIG_EXTENSION, RouteSource

    url = settings.routes_url
    assert url is not None
    if settings.routes:
        raise ConfigurationError(
            Reason.CONFIGURATION_ERROR, "IDP_ROUTES_URL: set IDP_ROUTES or IDP_ROUTES_URL, not both"
        )
    if not url.startswith(APPCONFIG_EXTENSION):
        check_url(url, "IDP_ROUTES_URL", allow_loopback_http=settings.allow_loopback_http)

    def parse(body: dict[str, Any]) -> Responder:
        try:
            table = RouteTable.build(body, settings.required_scopes, allow_unlisted=settings.routes_default == "allow")
        except ValueError as exc:
            raise UpstreamUnavailable(Reason.INVALID_ROUTES, str(exc)) from None
        if table.introspects and not introspection:
            raise UpstreamUnavailable(
                Reason.INVALID_ROUTES, "a route sets introspect, no introspection provider is set"
            )
        return responder(settings, table)

    return RouteSource(http, url, parse, on_change, reload_seconds=settings.routes_reload_seconds, clock=clock)


def _instrument(settings: Settings, http: HttpClient | None, clock: Clock) -> tuple[Metrics, HttpClient]:
    """The metrics sink and an HTTP client that times IdP calls into it (imported only when metrics are on).

    The ``Service`` dimension is the Lambda function's name, so several authorizers can share a namespace.
    """
    from idp_authorizer.infra.metrics import Metrics, TimedHttpClient

    introspection = {c.label for c in settings.provider_configs() if c.provider == "introspection"}
    service = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "idp-authorizer")
    metrics = Metrics(settings.metrics_namespace, service, introspection_providers=introspection, clock=clock)
    return metrics, http or TimedHttpClient(metrics, **http_options(settings))


def http_options(settings: Settings) -> dict[str, Any]:
    """The HTTP client's limits and trust store (``IDP_CA_BUNDLE``, read now), for the runtime and the doctor."""
    return {
        "timeout": settings.http_timeout_seconds,
        "connect_timeout": settings.http_connect_timeout_seconds,
        "max_bytes": settings.http_max_response_bytes,
        "tls": tls_context(settings.ca_bundle),
    }
