"""The provider seam: every kind has a driver, every driver builds a :class:`Provider`, and the URLs a
driver derives are the ones its provider fetches, at run time and in the doctor alike.

Building each kind against real servers, and what each provider then decides, is covered by the
provider, handler and conformance tests; this file pins the registry and the derivation.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import typing
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from event_factory import rest_token
from introspection_server import BASIC, IntrospectionServer

from idp_authorizer.aws import registry
from idp_authorizer.aws.compose import build_authorizer
from idp_authorizer.aws.settings import ProviderConfig, ProviderKind, Settings
from idp_authorizer.core.errors import ConfigurationError
from idp_authorizer.core.provider import Provider
from idp_authorizer.infra.http import HttpClient
from idp_authorizer.tools.checkup import Checkup
from idp_authorizer.tools.devidp import DevIdp
from idp_authorizer.tools.report import Finding
from providers.driver import Driver, Endpoints

ROOT = Path(__file__).resolve().parents[2]

AUTH0 = {"provider": "auth0", "auth0_domain": "tenant.eu.auth0.com", "audience": ["api"]}
COGNITO = {"provider": "cognito", "cognito_user_pool_id": "eu-west-1_AbC123", "cognito_client_ids": ["app"]}
TENANTS = ("11111111-2222-3333-4444-555555555555", "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee")
ENTRA = {
    "provider": "entra",
    "entra_tenant_id": "organizations",
    "entra_allowed_tenants": list(TENANTS),
    "audience": ["api://orders"],
}


def test_every_kind_the_settings_allow_has_a_driver_and_no_other():
    kinds = set(typing.get_args(ProviderKind))
    assert set(registry.DRIVERS) == kinds
    for kind in sorted(kinds):
        assert isinstance(registry.driver(kind), Driver), kind


def test_an_unknown_kind_is_a_configuration_error():
    with pytest.raises(ConfigurationError) as raised:
        registry.driver("saml")
    assert raised.value.code == "configuration_error"
    assert raised.value.description == (
        "IDP_PROVIDER: not a provider kind (one of auth0, cognito, entra, introspection, jwks, oidc)"
    )


def test_each_driver_builds_a_provider_that_states_what_it_claims():
    configs = [
        {
            "name": "jwks",
            "provider": "jwks",
            "issuer": "https://a.example/",
            "jwks_url": "https://a.example/k",
            "audience": ["api"],
        },
        {"name": "oidc", "provider": "oidc", "issuer": "https://b.example/", "audience": ["api"]},
        {"name": "auth0", **AUTH0},
        {"name": "cognito", **COGNITO},
        {"name": "entra", **ENTRA},
        {
            "name": "opaque",
            "provider": "introspection",
            "issuer": "https://c.example/",
            "client_id": "c",
            "client_secret": "s",
        },
    ]
    authorizer = build_authorizer(Settings(providers=configs))  # no I/O: nothing is fetched before a token comes
    providers = {p.name: p for p in authorizer.router.providers}
    assert all(isinstance(p, Provider) for p in providers.values())
    claims = {name: (p.accepts, p.issuers) for name, p in providers.items()}
    assert claims == {
        "jwks": ("jwt", {"https://a.example/"}),
        "oidc": ("jwt", {"https://b.example/"}),
        "auth0": ("jwt", {"https://tenant.eu.auth0.com/"}),
        "cognito": ("jwt", {"https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC123"}),
        "entra": ("jwt", {f"https://login.microsoftonline.com/{tenant}/v2.0" for tenant in TENANTS}),
        "opaque": ("opaque", frozenset()),
    }
    assert authorizer.router.introspector is providers["opaque"]


def test_endpoints_per_kind():
    issuer = "https://idp.example/realm/"
    oidc = ProviderConfig(provider="oidc", issuer=issuer, audience=("api",))
    assert registry.endpoints(oidc) == Endpoints(
        issuer, "jwks_uri", discovery="https://idp.example/realm/.well-known/openid-configuration"
    )
    pinned = ProviderConfig(provider="oidc", issuer=issuer, jwks_url="https://keys.example/jwks", audience=("api",))
    assert registry.endpoints(pinned).url == "https://keys.example/jwks"
    jwks = ProviderConfig(provider="jwks", issuer=issuer, jwks_url="https://keys.example/jwks", audience=("api",))
    assert registry.endpoints(jwks) == Endpoints(issuer, "jwks_uri", url="https://keys.example/jwks")
    assert registry.endpoints(ProviderConfig.model_validate(AUTH0)) == Endpoints(
        "https://tenant.eu.auth0.com/",
        "jwks_uri",
        url="https://tenant.eu.auth0.com/.well-known/jwks.json",
        discovery="https://tenant.eu.auth0.com/.well-known/openid-configuration",
        issuer_setting="auth0_domain",
    )
    assert registry.endpoints(ProviderConfig.model_validate(COGNITO)) == Endpoints(
        "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC123",
        "jwks_uri",
        url="https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC123/.well-known/jwks.json",
        discovery="https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC123/.well-known/openid-configuration",
        issuer_setting="cognito_user_pool_id",
    )
    assert registry.endpoints(ProviderConfig.model_validate(ENTRA)) == Endpoints(
        "https://login.microsoftonline.com/{tenantid}/v2.0",
        "jwks_uri",
        url="https://login.microsoftonline.com/organizations/discovery/v2.0/keys",
        discovery="https://login.microsoftonline.com/organizations/v2.0/.well-known/openid-configuration",
        issuer_setting="entra_tenant_id",
    )
    v1 = ProviderConfig.model_validate({**ENTRA, "entra_tenant_id": TENANTS[0], "entra_token_version": 1})
    assert registry.endpoints(v1) == Endpoints(
        f"https://sts.windows.net/{TENANTS[0]}/",
        "jwks_uri",
        url=f"https://login.microsoftonline.com/{TENANTS[0]}/discovery/v2.0/keys",
        discovery=f"https://login.microsoftonline.com/{TENANTS[0]}/.well-known/openid-configuration",
        issuer_setting="entra_tenant_id",
    )
    updated = ProviderConfig.model_validate({**COGNITO, "cognito_issuer_type": "UPDATED"})
    assert registry.endpoints(updated).issuer == "https://issuer-cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC123"
    assert registry.endpoints(updated).url == (
        "https://issuer-cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC123/.well-known/jwks.json"
    )
    for preset in (AUTH0, COGNITO, ENTRA):  # IDP_JWKS_URL overrides the key set URL of every preset, not the issuer
        overridden = ProviderConfig.model_validate({**preset, "jwks_url": "http://127.0.0.1:9/jwks"})
        assert registry.endpoints(overridden).url == "http://127.0.0.1:9/jwks"
        assert registry.endpoints(overridden).issuer == registry.endpoints(ProviderConfig.model_validate(preset)).issuer
    secret = {"client_id": "c", "client_secret": "s"}
    direct = ProviderConfig(provider="introspection", introspection_url="https://idp.example/introspect", **secret)
    assert registry.endpoints(direct) == Endpoints(None, "introspection_endpoint", url="https://idp.example/introspect")
    found = ProviderConfig(provider="introspection", issuer=issuer, **secret)
    assert registry.endpoints(found).discovery == "https://idp.example/realm/.well-known/openid-configuration"


def test_a_malformed_auth0_domain_is_a_configuration_error():
    config = ProviderConfig.model_validate({**AUTH0, "auth0_domain": "tenant.example/path"})
    with pytest.raises(ConfigurationError, match="IDP_AUTH0_DOMAIN must be a host name"):
        registry.endpoints(config)


def _paths(*urls: str | None) -> set[str]:
    return {urlsplit(url).path for url in urls if url is not None}


@pytest.mark.parametrize("kind", ["oidc", "jwks"])
def test_the_runtime_and_the_doctor_fetch_the_derived_urls(kind):
    with DevIdp(audience="demo-api") as idp:
        fields = {"jwks_url": idp.jwks_url} if kind == "jwks" else {}
        config = ProviderConfig(provider=kind, issuer=idp.issuer, audience=(idp.audience,), **fields)
        where = registry.endpoints(config)
        # The dev IdP's discovery names its jwks_uri: the derived URLs, and what a token costs.
        derived = _paths(where.discovery, where.url or idp.jwks_url)
        assert len(derived) == (2 if kind == "oidc" else 1)

        authorizer = build_authorizer(Settings(providers=[config], allow_loopback_http=True))
        assert authorizer.handle(rest_token(idp.mint()))["principalId"] == "user-123"
        authorizer.close()
        assert set(idp.hits) == derived

        idp.hits.clear()
        assert _problems(asyncio.run(_checkup(config))) == []
        assert set(idp.hits) == derived


def test_introspection_through_discovery_asks_the_discovered_endpoint():
    with IntrospectionServer() as server:
        config = ProviderConfig(
            provider="introspection", issuer=server.issuer, client_id=BASIC.client_id, client_secret=BASIC.client_secret
        )
        assert registry.endpoints(config).discovery == f"{server.issuer}/.well-known/openid-configuration"
        authorizer = build_authorizer(Settings(providers=[config], allow_loopback_http=True))
        assert authorizer.handle(rest_token(server.issue(sub="machine-1")))["principalId"] == "machine-1"
        authorizer.close()
        assert (server.discovery_hits, server.calls) == (1, 1)
        assert _problems(asyncio.run(_checkup(config))) == []
        assert (server.discovery_hits, server.calls) == (2, 2)


def _problems(findings: list[Finding]) -> list[Finding]:
    return [finding for finding in findings if finding.status == "problem"]


async def _checkup(config: ProviderConfig) -> list[Finding]:
    http = HttpClient()
    try:
        return await Checkup(config, None, http, loopback=True, leeway=0.0, clock=time.time).run()
    finally:
        await http.close()


def test_a_cold_start_imports_the_configured_driver_only():
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("IDP_")},
        "IDP_PROVIDER": "introspection",
        "IDP_INTROSPECTION_URL": "https://idp.example/introspect",
        "IDP_CLIENT_ID": "client",
        "IDP_CLIENT_SECRET": "secret",
    }
    code = (
        "import json, sys\n"
        "from idp_authorizer import handler\n"
        "assert handler._authorizer is not None\n"
        "print(json.dumps(sorted(n for n in sys.modules if n.startswith(('idp_authorizer', 'providers')))))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True, env=env, cwd=ROOT
    )
    loaded = set(json.loads(run.stdout.strip().splitlines()[-1]))
    assert {"providers.driver", "providers.introspection"} <= loaded
    jwt_drivers = {"providers.jwks", "providers.oidc", "providers.auth0", "providers.cognito", "providers.entra"}
    assert not loaded & (jwt_drivers | {"idp_authorizer.infra.keyset"}), loaded
