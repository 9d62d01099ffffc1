"""What ``doctor`` knows of each preset: the derived issuer and key URL, and the preset's usual mistakes.

Before any token: the URLs a preset derives from its one variable (shown so they can be compared with
the IdP console), and a note on what most often goes wrong with it. With ``--token``: why a refused
token was refused in that IdP's terms (an ID token where an access token is expected, a v1 token for a
v2 configuration, a tenant left out of the allowlist). Public values only: ``iss``, ``tid``,
``token_use``, client ids; never the token.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from idp_authorizer.aws.registry import endpoints
from idp_authorizer.aws.settings import ProviderConfig
from idp_authorizer.core.errors import ConfigurationError
from idp_authorizer.tools.report import Finding, note, ok, shown_url

CLIENT_CLAIMS = ("client_id", "azp", "cid", "appid", "aud")


def derived(config: ProviderConfig) -> list[Finding]:
    """The issuer and key set URL a preset derives (and, for Entra, the tenants it accepts)."""
    if config.provider not in ("auth0", "cognito", "entra"):
        return []
    topic = f"[{config.label}] {config.provider}"
    try:
        where = endpoints(config)
    except ConfigurationError:
        return []  # reported with the settings
    keys = shown_url(where.url or "")
    override = " (IDP_JWKS_URL override)" if config.jwks_url else ""
    findings = [ok(topic, f"issuer {where.issuer}, keys {keys}{override}")]
    if config.provider == "entra":
        version = config.entra_token_version
        tenants = ", ".join(config.entra_allowed_tenants) or (config.entra_tenant_id or "")
        findings.append(
            note(
                topic,
                f"v{version} access tokens of tenant(s) {tenants}; the app registration's accessTokenAcceptedVersion "
                f"(api.requestedAccessTokenVersion) must be {'2' if version == '2' else '1 or null'}, "
                f"or its tokens carry the other issuer",
            )
        )
    if config.provider == "cognito":
        findings.append(
            note(topic, f"{config.cognito_token_use} tokens of app clients {', '.join(config.cognito_client_ids)}")
        )
    return findings


def token_fix(config: ProviderConfig | None, code: str, claims: Mapping[str, Any]) -> str | None:
    """The fix for a refused token in the terms of its preset, or ``None`` to use the generic one."""
    if config is None:
        return None
    iss = claims.get("iss")
    iss_text = iss if isinstance(iss, str) else ""
    if config.provider == "cognito" and code == "wrong_token_use":
        if claims.get("token_use") == "id":
            return "this is a Cognito ID token: send the access token (or accept ID tokens: IDP_COGNITO_TOKEN_USE=id)"
        return "this is a Cognito access token: send the ID token, or set IDP_COGNITO_TOKEN_USE=access"
    if config.provider == "cognito" and code == "wrong_client":
        return "add the token's app client id to IDP_COGNITO_CLIENT_IDS, or get the token for a listed client"
    version = config.entra_token_version
    if config.provider == "entra" and code == "wrong_issuer":
        if iss_text.startswith("https://sts.windows.net/") and version == "2":
            return (
                "this is a v1 token: set IDP_ENTRA_TOKEN_VERSION=1, or set accessTokenAcceptedVersion to 2 in the "
                "app registration's manifest"
            )
        if iss_text.startswith("https://login.microsoftonline.com/") and version == "1":
            return "this is a v2 token: set IDP_ENTRA_TOKEN_VERSION=2 (the app's accessTokenAcceptedVersion is 2)"
    client_claim = "azp" if version == "2" else "appid"
    if config.provider == "entra" and code in ("wrong_client", "not_an_access_token") and client_claim not in claims:
        return (
            f"this looks like an ID token (no {client_claim}): send the access token the client got for this API's "
            "scope (api://.../.default or a scope of the app)"
        )
    if code == "tenant_not_allowed":
        variable = "IDP_ENTRA_ALLOWED_TENANTS" if config.provider == "entra" else "IDP_ALLOWED_TENANTS"
        return f"the token's tenant is not accepted: add its tid to {variable} if this API serves it"
    if code == "tenant_mismatch":
        return "the token's iss names another tenant than its tid: it is forged or from a misbehaving IdP; refuse it"
    if code == "wrong_client":
        return "add the token's client to IDP_CLIENT_IDS, or get the token for a listed client"
    return None


def claim_hint(code: str, claims: Mapping[str, Any]) -> str:
    """What the token says about the claims behind ``code`` (public values only)."""
    names = {
        "wrong_client": CLIENT_CLAIMS,
        "wrong_token_use": ("token_use",),
        "tenant_not_allowed": ("iss", "tid"),
        "tenant_mismatch": ("iss", "tid"),
    }.get(code, ())
    found = [f"{name}={claims[name]!r}" for name in names if name in claims]
    return f"; the token says {', '.join(found)}" if found else ""
