"""OpenID Connect (``IDP_PROVIDER=oidc``): the generic JWT verifier with its key set URL read from the
issuer's discovery document (:class:`providers.discovery.Discovery`), unless ``IDP_JWKS_URL`` is set."""

from __future__ import annotations

from providers.discovery import discovery_url
from providers.driver import Endpoints, ProviderOptions
from providers.jwks import jwt_driver


def endpoints(config: ProviderOptions) -> Endpoints:
    """The discovery document of ``IDP_ISSUER``; its ``jwks_uri`` unless ``IDP_JWKS_URL`` is set."""
    assert config.issuer is not None
    return Endpoints(config.issuer, "jwks_uri", url=config.jwks_url, discovery=discovery_url(config.issuer))


DRIVER = jwt_driver(endpoints)
