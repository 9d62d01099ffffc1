"""What a driver module is: where its provider fetches from, and how it is built from the settings.

Every driver module (``providers/<kind>.py``) exposes ``DRIVER``, a :class:`Driver`; the registry
(:mod:`idp_authorizer.aws.registry`) maps each ``IDP_PROVIDER`` value to its module and imports only
the configured ones. The runtime builds providers with :attr:`Driver.build`, and the doctor checks
the URLs of :attr:`Driver.endpoints`: the same derivation for both, so they cannot disagree.

The drivers cannot import the Lambda adapter (the rings point inward), so what they are given is
described here as protocols: :class:`ProviderOptions` is one configured provider (the adapter's
``ProviderConfig``), :class:`Parts` what all providers of one authorizer share (its ``Collaborators``),
and :class:`DriverSettings` the only settings a driver reads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from idp_authorizer.core.clock import Clock
from idp_authorizer.core.provider import Provider

if TYPE_CHECKING:
    from idp_authorizer.infra.cache import BoundedMemoryCache
    from idp_authorizer.infra.client_auth import ClientAuthMethod
    from idp_authorizer.infra.http import HttpClient
    from idp_authorizer.infra.shared_cache import SharedDocuments, SharedTier
    from providers.discovery import Discovery

MetadataName = Literal["jwks_uri", "introspection_endpoint"]
"""What a provider fetches, named as in the discovery metadata (RFC 8414 section 2)."""


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where one configured provider fetches from, derived from its settings without I/O.

    ``url`` is the configured URL of what it ``fetches``; when ``None`` it is read from the discovery
    document at ``discovery``. ``discovery`` may be set with ``url`` too: the IdP publishes one, and
    the doctor checks that its ``issuer`` is ours (https://openid.net/specs/openid-connect-discovery-1_0.html
    section 4.3).
    """

    issuer: str | None
    fetches: MetadataName
    url: str | None = None
    discovery: str | None = None
    issuer_setting: str = "issuer"
    """The setting ``issuer`` comes from (``issuer``, ``auth0_domain``, ``cognito_user_pool_id``,
    ``entra_tenant_id``): the one to fix when it is wrong."""

    def __post_init__(self) -> None:
        if self.url is None and self.discovery is None:
            raise ValueError(f"no {self.fetches}: neither configured nor discoverable")


class Secret(Protocol):
    def get_secret_value(self) -> str: ...


class ProviderOptions(Protocol):
    """One configured provider, as the driver reads it (validated already: what its kind needs is set)."""

    @property
    def label(self) -> str: ...
    @property
    def issuer(self) -> str | None: ...
    @property
    def audience(self) -> tuple[str, ...]: ...
    @property
    def algorithms(self) -> tuple[str, ...]: ...
    @property
    def jwks_url(self) -> str | None: ...
    @property
    def auth0_domain(self) -> str | None: ...
    @property
    def required_typ(self) -> str | None: ...
    @property
    def client_ids(self) -> tuple[str, ...]: ...
    @property
    def allowed_tenants(self) -> tuple[str, ...]: ...
    @property
    def tenant_claim(self) -> str: ...
    @property
    def cognito_user_pool_id(self) -> str | None: ...
    @property
    def cognito_client_ids(self) -> tuple[str, ...]: ...
    @property
    def cognito_token_use(self) -> str: ...
    @property
    def cognito_issuer_type(self) -> str: ...
    @property
    def entra_tenant_id(self) -> str | None: ...
    @property
    def entra_token_version(self) -> str: ...
    @property
    def entra_allowed_tenants(self) -> tuple[str, ...]: ...
    @property
    def introspection_url(self) -> str | None: ...
    @property
    def client_id(self) -> str | None: ...
    @property
    def client_secret(self) -> Secret | None: ...
    @property
    def client_auth(self) -> ClientAuthMethod: ...


class DriverSettings(Protocol):
    """The authorizer-wide settings a driver reads (never ``os.environ``)."""

    @property
    def allow_loopback_http(self) -> bool: ...
    @property
    def leeway_seconds(self) -> float: ...
    @property
    def jwks_max_age_seconds(self) -> float: ...
    @property
    def jwks_cooldown_seconds(self) -> float: ...
    @property
    def jwks_stale_seconds(self) -> float: ...
    @property
    def token_cache_seconds(self) -> float: ...
    @property
    def introspection_cache_seconds(self) -> float: ...
    @property
    def negative_cache_seconds(self) -> float: ...


class Parts(Protocol):
    """What every provider of one authorizer shares: settings, HTTP client, clock, both cache tiers."""

    @property
    def settings(self) -> DriverSettings: ...
    @property
    def http(self) -> HttpClient: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def cache(self) -> BoundedMemoryCache: ...
    @property
    def shared(self) -> SharedTier | None: ...
    def documents(self, kind: str) -> SharedDocuments | None:
        """The shared tier's store for one kind of document (``jwks``, ``discovery``), if there is a tier."""
        ...

    def discovery(self, issuer: str) -> Discovery:
        """The issuer's discovery document, one per issuer however many providers read it."""
        ...


@dataclass(frozen=True, slots=True)
class Driver:
    """One provider kind: its endpoints (for the doctor and the build alike) and its builder (no I/O)."""

    endpoints: Callable[[ProviderOptions], Endpoints]
    build: Callable[[ProviderOptions, Parts], Provider]
