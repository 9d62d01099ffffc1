"""Auth0 as a preset of the generic JWKS verifier (``IDP_PROVIDER=auth0``).

Tenant ``{domain}`` issues tokens with ``iss`` ``https://{domain}/`` and publishes its keys at
``https://{domain}/.well-known/jwks.json``; API permissions arrive in the ``permissions`` claim when
RBAC is on, which the rule engine reads next to ``scope``. The key set URL is derived, not
discovered (``IDP_JWKS_URL`` overrides it, as for every preset); the tenant's discovery document is
named for the doctor to check.
"""

from __future__ import annotations

import re

from idp_authorizer.core.errors import ConfigurationError, Reason
from providers.discovery import discovery_url
from providers.driver import Endpoints, ProviderOptions
from providers.jwks import jwt_driver

_DOMAIN = re.compile(r"[A-Za-z0-9.-]+(:\d+)?")


def auth0_issuer(domain: str) -> str:
    return f"https://{_clean(domain)}/"


def auth0_jwks_url(domain: str) -> str:
    return f"https://{_clean(domain)}/.well-known/jwks.json"


def endpoints(config: ProviderOptions) -> Endpoints:
    """Everything from ``IDP_AUTH0_DOMAIN``; raises :class:`ConfigurationError` for a malformed domain."""
    assert config.auth0_domain is not None
    issuer = auth0_issuer(config.auth0_domain)
    url = config.jwks_url or auth0_jwks_url(config.auth0_domain)
    return Endpoints(issuer, "jwks_uri", url=url, discovery=discovery_url(issuer), issuer_setting="auth0_domain")


DRIVER = jwt_driver(endpoints)


def _clean(domain: str) -> str:
    host = domain.strip().removeprefix("https://").rstrip("/")
    if not _DOMAIN.fullmatch(host):
        raise ConfigurationError(
            Reason.CONFIGURATION_ERROR, "IDP_AUTH0_DOMAIN must be a host name such as example.eu.auth0.com"
        )
    return host
