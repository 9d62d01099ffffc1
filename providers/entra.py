"""Microsoft Entra ID as a preset of the JWT verifier (``IDP_PROVIDER=entra``), single- or multi-tenant.

``IDP_ENTRA_TENANT_ID`` is a tenant GUID, or ``organizations`` / ``common`` for a multi-tenant app.
Access tokens v2.0 carry ``iss`` ``https://login.microsoftonline.com/{tid}/v2.0``, v1.0 tokens
``https://sts.windows.net/{tid}/`` (the app registration's ``accessTokenAcceptedVersion`` decides;
``IDP_ENTRA_TOKEN_VERSION`` must agree). Keys come from
``https://login.microsoftonline.com/{tenant}/discovery/v2.0/keys``
(https://learn.microsoft.com/en-us/entra/identity-platform/access-tokens).

Every tenant shares those keys, so the signature says nothing about the tenant: the issuer is the
template with ``{tenantid}`` (as the ``common`` discovery document publishes it), expanded over the
allowed tenants, and ``iss`` must name the token's own ``tid`` (:class:`~idp_authorizer.jose.issuer.Issuers`).
A single-tenant app is the same with its one tenant. ``IDP_AUDIENCE`` holds the app's client id
and/or App ID URI (``api://...``); scopes come from ``scp``, app roles from ``roles``, the client from
``azp`` (v2) or ``appid`` (v1).
"""

from __future__ import annotations

import re

from idp_authorizer.core.errors import ConfigurationError, Problem, Reason
from idp_authorizer.jose.issuer import TENANT, Issuers
from idp_authorizer.jose.jwt import ClaimRules
from providers.driver import Endpoints, ProviderOptions
from providers.jwks import jwt_driver

LOGIN = "https://login.microsoftonline.com"
MULTI_TENANT = ("organizations", "common")
"""Tenant names of a multi-tenant app: any tenant's tokens, of which only ``IDP_ENTRA_ALLOWED_TENANTS`` are accepted."""
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def entra_issuer(tenant: str, version: str) -> str:
    """The ``iss`` of ``tenant`` (a GUID, or the ``{tenantid}`` placeholder) for tokens of ``version``."""
    return f"https://sts.windows.net/{tenant}/" if version == "1" else f"{LOGIN}/{tenant}/v2.0"


def endpoints(config: ProviderOptions) -> Endpoints:
    """Issuer (the template for a multi-tenant app, as discovery publishes it), keys and discovery URL."""
    tenant = _tenant(config.entra_tenant_id)
    version = config.entra_token_version
    issuer = entra_issuer(TENANT if tenant in MULTI_TENANT else tenant, version)
    url = config.jwks_url or f"{LOGIN}/{tenant}/discovery/v2.0/keys"
    discovery = f"{LOGIN}/{tenant}{'/v2.0' if version == '2' else ''}/.well-known/openid-configuration"
    return Endpoints(issuer, "jwks_uri", url=url, discovery=discovery, issuer_setting="entra_tenant_id")


def claim_rules(config: ProviderOptions, where: Endpoints, leeway: float) -> ClaimRules:
    """``iss`` one allowed tenant's, bound to ``tid``; ``aud`` one of ``IDP_AUDIENCE``; an access token's client
    (``azp``, v1 ``appid``), one of ``IDP_CLIENT_IDS`` if set; ``scp`` or ``roles``.

    The last two refuse an ID token of the same app: its ``aud`` is the app's client id too and its
    ``typ`` is ``JWT`` like an access token's, but it has no ``azp`` (v1: ``appid``) and no ``scp``
    (it may carry ``roles``). Microsoft's guidance: validate ``scp`` or ``roles``, and the client.
    """
    tenant = _tenant(config.entra_tenant_id)
    allowed = tuple(_guid(value, "IDP_ENTRA_ALLOWED_TENANTS") for value in config.entra_allowed_tenants)
    if tenant in MULTI_TENANT and not allowed:
        message = f"IDP_ENTRA_TENANT_ID={tenant} accepts any tenant's tokens: IDP_ENTRA_ALLOWED_TENANTS names which"
        raise ConfigurationError(
            Reason.CONFIGURATION_ERROR, problems=(Problem(message, ("IDP_ENTRA_ALLOWED_TENANTS",)),)
        )
    if tenant not in MULTI_TENANT:
        if set(allowed) - {tenant}:
            raise ConfigurationError(
                Reason.CONFIGURATION_ERROR,
                "IDP_ENTRA_ALLOWED_TENANTS: a single-tenant app (IDP_ENTRA_TENANT_ID a GUID) accepts that tenant only",
            )
        allowed = (tenant,)
    version = config.entra_token_version
    issuers = Issuers.template(entra_issuer(TENANT, version), allowed, "tid")
    return ClaimRules(
        issuers,
        frozenset(config.audience),
        leeway,
        clients=frozenset(config.client_ids),
        client_claims=("azp",) if version == "2" else ("appid",),
        client_required=True,
        access_claims=("scp", "roles"),
    )


DRIVER = jwt_driver(endpoints, claim_rules)


def _tenant(value: str | None) -> str:
    assert value is not None
    text = value.strip().lower()
    return text if text in MULTI_TENANT else _guid(text, "IDP_ENTRA_TENANT_ID")


def _guid(value: str, variable: str) -> str:
    """A tenant id as tokens carry it (lower case); tokens name tenants by GUID, never by domain name."""
    text = value.strip().lower()
    if not _GUID.fullmatch(text):
        hint = " (tokens name the tenant by its GUID, not a domain name)" if "." in text else ""
        raise ConfigurationError(
            Reason.CONFIGURATION_ERROR,
            f"{variable} must be a tenant GUID{' or organizations/common' if 'TENANT_ID' in variable else ''}{hint}",
        )
    return text
