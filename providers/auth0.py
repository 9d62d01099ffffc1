"""Auth0 as a preset of the generic JWKS verifier (``IDP_PROVIDER=auth0``).

Tenant ``{domain}`` issues tokens with ``iss`` ``https://{domain}/`` and publishes its keys at
``https://{domain}/.well-known/jwks.json``; API permissions arrive in the ``permissions`` claim when
RBAC is on, which the rule engine reads next to ``scope``. The key set URL is derived, not
discovered; the tenant's discovery document is named for the doctor to check.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from idp_authorizer.core.errors import ConfigurationError, Reason
from providers.driver import Driver, Endpoints, Parts, ProviderOptions

if TYPE_CHECKING:
    from providers.jwks import JwksProvider

_DOMAIN = re.compile(r"[A-Za-z0-9.-]+(:\d+)?")


def auth0_issuer(domain: str) -> str:
    return f"https://{_clean(domain)}/"


def auth0_jwks_url(domain: str) -> str:
    return f"https://{_clean(domain)}/.well-known/jwks.json"


def endpoints(config: ProviderOptions) -> Endpoints:
    """Everything from ``IDP_AUTH0_DOMAIN``; raises :class:`ConfigurationError` for a malformed domain."""
    from providers.oidc import discovery_url

    assert config.auth0_domain is not None
    issuer = auth0_issuer(config.auth0_domain)
    url = auth0_jwks_url(config.auth0_domain)
    return Endpoints(issuer, "jwks_uri", url=url, discovery=discovery_url(issuer), issuer_setting="auth0_domain")


def build(config: ProviderOptions, parts: Parts) -> JwksProvider:
    from providers.jwks import build_verifier

    return build_verifier(config, parts, endpoints(config))


DRIVER = Driver(endpoints, build)


def _clean(domain: str) -> str:
    host = domain.strip().removeprefix("https://").rstrip("/")
    if not _DOMAIN.fullmatch(host):
        raise ConfigurationError(
            Reason.CONFIGURATION_ERROR, "IDP_AUTH0_DOMAIN must be a host name such as example.eu.auth0.com"
        )
    return host
