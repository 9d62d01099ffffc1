"""Tokens shaped as each IdP issues them, and the settings that accept them, minted by the dev IdP.

The dev IdP signs; the claims and header follow each IdP's documentation, so ``demo --preset``,
``dev-idp --preset`` and the tests see the same shapes. The settings point the preset at the dev
IdP's key set through ``IDP_JWKS_URL`` (the override every preset honours); the issuer stays the
IdP's real one, as in production.

- Cognito: https://docs.aws.amazon.com/cognito/latest/developerguide/amazon-cognito-user-pools-using-the-access-token.html
- Entra: https://learn.microsoft.com/en-us/entra/identity-platform/access-token-claims-reference
- Okta: https://developer.okta.com/docs/reference/api/oidc/#access-token
- Keycloak: access tokens of a realm (``realm_access``, ``resource_access``, ``azp``)
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

POOL = "eu-west-1_DevPool01"
COGNITO_CLIENT = "4bnk1ggb2m3q6ho0dev0client"
TENANT = "11111111-2222-3333-4444-555555555555"
OTHER_TENANT = "99999999-8888-7777-6666-555555555555"
ENTRA_APP = "6e74172b-be56-4843-9ff4-e66a39bb12e3"
ENTRA_CLIENT = "c44b4083-3bb0-49c1-b47d-974e53cbdf3c"
OKTA_ISSUER = "https://dev-123456.okta.com/oauth2/default"
KEYCLOAK_ISSUER = "https://sso.example.com/realms/shop"


@dataclass(frozen=True, slots=True)
class Preset:
    """One IdP: the settings that accept its tokens (given the dev IdP's key set URL), and its token shape."""

    name: str
    settings: Callable[[str], dict[str, str]]
    claims: Callable[[], dict[str, Any]]
    header: dict[str, Any]
    """Header members to override (``None`` drops one): Cognito sends no ``typ``, Entra and Keycloak ``JWT``."""
    scope: str
    """A scope its tokens carry (what the demo's read route requires)."""


def _common(issuer: str) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": issuer, "iat": now, "exp": now + 3600, "jti": uuid.uuid4().hex, "scope": None}


def cognito_claims() -> dict[str, Any]:
    now = int(time.time())
    return {
        **_common(f"https://cognito-idp.eu-west-1.amazonaws.com/{POOL}"),
        "sub": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
        "aud": None,
        "cognito:groups": ["admins", "staff"],
        "version": 2,
        "client_id": COGNITO_CLIENT,
        "origin_jti": uuid.uuid4().hex,
        "event_id": str(uuid.uuid4()),
        "token_use": "access",
        "scope": "orders-api/read openid",
        "auth_time": now,
        "username": "jdoe",
    }


def entra_claims() -> dict[str, Any]:
    return {
        **_common(f"https://login.microsoftonline.com/{TENANT}/v2.0"),
        "aud": ENTRA_APP,
        "sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",
        "oid": "00000000-0000-0000-66f3-3332eca7ea81",
        "tid": TENANT,
        "azp": ENTRA_CLIENT,
        "azpacr": "0",
        "client_id": None,
        "scp": "orders.read orders.write",
        "roles": ["Orders.Admin"],
        "ver": "2.0",
    }


def okta_claims() -> dict[str, Any]:
    return {
        **_common(OKTA_ISSUER),
        "aud": "api://default",
        "sub": "jdoe@example.com",
        "uid": "00uid4BxXw6I6TV4m0g3",
        "cid": "0oa1pnl2k8dev0client",
        "client_id": None,
        "scp": ["orders.read", "openid"],
        "groups": ["Everyone", "Ops"],
        "ver": 1,
    }


def keycloak_claims() -> dict[str, Any]:
    return {
        **_common(KEYCLOAK_ISSUER),
        "aud": ["orders-api", "account"],
        "sub": "f1e2d3c4-b5a6-4789-8abc-def012345678",
        "typ": "Bearer",
        "azp": "orders-web",
        "client_id": None,
        "realm_access": {"roles": ["offline_access", "shop-admin"]},
        "resource_access": {"orders-api": {"roles": ["refund"]}, "account": {"roles": ["view-profile"]}},
        "scope": "openid profile orders",
        "preferred_username": "jdoe",
    }


PRESETS: dict[str, Preset] = {
    "cognito": Preset(
        "cognito",
        lambda jwks: {
            "IDP_PROVIDER": "cognito",
            "IDP_COGNITO_USER_POOL_ID": POOL,
            "IDP_COGNITO_CLIENT_IDS": COGNITO_CLIENT,
            "IDP_JWKS_URL": jwks,
        },
        cognito_claims,
        {"typ": None},
        "orders-api/read",
    ),
    "entra": Preset(
        "entra",
        lambda jwks: {
            "IDP_PROVIDER": "entra",
            "IDP_ENTRA_TENANT_ID": "organizations",
            "IDP_ENTRA_ALLOWED_TENANTS": TENANT,
            "IDP_AUDIENCE": f"{ENTRA_APP},api://orders",
            "IDP_JWKS_URL": jwks,
        },
        entra_claims,
        {"typ": "JWT"},
        "orders.read",
    ),
    "okta": Preset(
        "okta",
        lambda jwks: {
            "IDP_PROVIDER": "oidc",
            "IDP_ISSUER": OKTA_ISSUER,
            "IDP_AUDIENCE": "api://default",
            "IDP_JWKS_URL": jwks,
        },
        okta_claims,
        {},
        "orders.read",
    ),
    "keycloak": Preset(
        "keycloak",
        lambda jwks: {
            "IDP_PROVIDER": "oidc",
            "IDP_ISSUER": KEYCLOAK_ISSUER,
            "IDP_AUDIENCE": "orders-api",
            "IDP_JWKS_URL": jwks,
        },
        keycloak_claims,
        {"typ": "JWT"},
        "orders",
    ),
}
"""Every shape the dev IdP can mint, by name (``--preset``)."""
