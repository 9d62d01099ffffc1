"""Attacks on the presets (issue 13): issuer templates, client allowlist, JSON Pointer claims, configuration.

Every probe drives the real handler with tokens signed by the dev IdP and asserts the secure
behaviour. Written by a red-team review; the five findings it made (an Entra ID token taken for an
access token, identity context keys taken by claims, empty list entries, a non-native client claim
shadowing the IdP's own, generic variables ignored by presets) are fixed, and their probes stay here.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from event_factory import ARN, http_v2, rest_token
from joserfc import jws
from test_presets import Configure, decide, settings

from idp_authorizer import handler
from idp_authorizer.tools.presets import (
    COGNITO_CLIENT,
    ENTRA_APP,
    ENTRA_CLIENT,
    OTHER_TENANT,
    POOL,
    TENANT,
    cognito_claims,
)

API = ARN.rsplit("/", 2)[0]
COGNITO_ISS = f"https://cognito-idp.eu-west-1.amazonaws.com/{POOL}"
ENTRA_ISS = f"https://login.microsoftonline.com/{TENANT}/v2.0"


def raw_token(idp, payload: str, header: dict[str, Any] | None = None) -> str:
    """A token signed over exactly ``payload`` (duplicate keys, odd JSON the dict API cannot express)."""
    key = idp.keys["rsa"]
    protected = {"alg": "RS256", "kid": key.kid, **(header or {})}
    return jws.serialize_compact(protected, payload.encode(), key, algorithms=["RS256"])


# -- Cognito: other pools, regions, clients, token kinds, odd shapes --------------------------------

COGNITO_REFUSED = [
    ({"iss": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_devpool01"}, "wrong_issuer"),  # case of pool
    ({"iss": f"https://cognito-idp.eu-west-1.amazonaws.com/{POOL}/"}, "wrong_issuer"),  # trailing slash
    ({"iss": f"https://COGNITO-IDP.eu-west-1.amazonaws.com/{POOL}"}, "wrong_issuer"),  # host case
    ({"iss": f"https://cognito-idp.eu-west-1.amazonaws.com/{POOL}\u200b"}, "wrong_issuer"),  # zero-width space
    (
        {"iss": "https://cognito-idp.eu-west-1.amazonaws.com/eu\u2010west-1_DevPool01"},
        "wrong_issuer",
    ),  # hyphen lookalike
    ({"iss": f"https://cognito-idp.eu-west-2.amazonaws.com/{POOL}"}, "wrong_issuer"),  # region
    ({"iss": [COGNITO_ISS]}, "wrong_issuer"),
    ({"iss": None}, "wrong_issuer"),
    ({"client_id": [COGNITO_CLIENT]}, "wrong_client"),
    ({"client_id": 4}, "wrong_client"),
    ({"client_id": {"id": COGNITO_CLIENT}}, "wrong_client"),
    ({"client_id": COGNITO_CLIENT.upper()}, "wrong_client"),
    ({"client_id": COGNITO_CLIENT + " "}, "wrong_client"),
    ({"client_id": None, "azp": COGNITO_CLIENT}, "wrong_client"),  # azp is not Cognito's client claim
    ({"client_id": None, "aud": COGNITO_CLIENT}, "wrong_client"),  # an access token's client is client_id
    ({"token_use": "ACCESS"}, "wrong_token_use"),
    ({"token_use": ["access"]}, "wrong_token_use"),
    ({"token_use": "access "}, "wrong_token_use"),
    # an ID token of the listed client (aud), with or without a client_id claim
    ({"token_use": "id", "aud": COGNITO_CLIENT, "client_id": None}, "wrong_token_use"),
    ({"token_use": "id", "aud": COGNITO_CLIENT}, "wrong_token_use"),
    ({"aud": 7}, "wrong_audience"),  # aud not required, but malformed is still refused
]


@pytest.mark.parametrize(("claims", "code"), COGNITO_REFUSED)
def test_cognito_access_config_refuses(dev_idp, configure: Configure, capsys, claims, code):
    configure(settings("cognito", dev_idp))
    assert decide(dev_idp.mint_preset("cognito", **claims), capsys) == ("unauthorized", code)


COGNITO_ID_REFUSED = [
    ({"aud": [COGNITO_CLIENT]}, "wrong_client"),  # a list is no Cognito client
    ({"aud": None, "client_id": COGNITO_CLIENT}, "wrong_client"),  # an ID token's client is its aud
    ({"aud": "other"}, "wrong_client"),
    ({"token_use": "access"}, "wrong_token_use"),
    ({"token_use": None}, "wrong_token_use"),
]


@pytest.mark.parametrize(("claims", "code"), COGNITO_ID_REFUSED)
def test_cognito_id_config_refuses(dev_idp, configure: Configure, capsys, claims, code):
    configure(settings("cognito", dev_idp, IDP_COGNITO_TOKEN_USE="id"))
    base = {"token_use": "id", "aud": COGNITO_CLIENT, "client_id": None}
    assert decide(dev_idp.mint_preset("cognito", **{**base, **claims}), capsys) == ("unauthorized", code)


def test_two_cognito_pools_never_judge_each_others_tokens(dev_idp, configure: Configure, capsys):
    other_pool = "eu-west-1_OtherPool"
    providers = [
        {
            "provider": "cognito",
            "name": "a",
            "cognito_user_pool_id": POOL,
            "cognito_client_ids": [COGNITO_CLIENT],
            "jwks_url": dev_idp.jwks_url,
        },
        {
            "provider": "cognito",
            "name": "b",
            "cognito_user_pool_id": other_pool,
            "cognito_client_ids": ["client-b"],
            "jwks_url": dev_idp.jwks_url,
        },
    ]
    configure({"IDP_PROVIDERS": json.dumps(providers), "IDP_ALLOW_LOOPBACK_HTTP": "true"})
    other_iss = f"https://cognito-idp.eu-west-1.amazonaws.com/{other_pool}"
    assert decide(dev_idp.mint_preset("cognito"), capsys) == ("allow", "allowed")
    assert decide(dev_idp.mint_preset("cognito", iss=other_iss, client_id="client-b"), capsys) == ("allow", "allowed")
    # one pool's client presented with the other pool's issuer: judged by that pool's rules
    assert decide(dev_idp.mint_preset("cognito", iss=other_iss), capsys) == ("unauthorized", "wrong_client")
    assert decide(dev_idp.mint_preset("cognito", client_id="client-b"), capsys) == ("unauthorized", "wrong_client")
    assert decide(dev_idp.mint_preset("cognito", iss=other_iss.upper()), capsys) == ("unauthorized", "unknown_issuer")


# -- Entra: tenants, template, case and unicode ------------------------------------------------------

HEX = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"  # an allowed tenant whose GUID has letters
HEX_ISS = f"https://login.microsoftonline.com/{HEX}/v2.0"
ENTRA_REFUSED = [
    ({"iss": HEX_ISS.upper(), "tid": HEX.upper()}, "wrong_issuer"),
    ({"iss": HEX_ISS.replace(HEX, HEX.upper()), "tid": HEX.upper()}, "tenant_not_allowed"),
    ({"iss": HEX_ISS, "tid": HEX.upper()}, "tenant_mismatch"),
    ({"iss": HEX_ISS.replace("a", "\u0430"), "tid": HEX.replace("a", "\u0430")}, "tenant_not_allowed"),  # Cyrillic a
    ({"tid": [TENANT]}, "tenant_mismatch"),
    ({"tid": {"id": TENANT}}, "tenant_mismatch"),
    ({"tid": f" {TENANT}"}, "tenant_mismatch"),
    ({"iss": "https://login.microsoftonline.com/%7Btenantid%7D/v2.0"}, "tenant_not_allowed"),
    ({"iss": "https://login.microsoftonline.com/{tenantid}/v2.0", "tid": "{tenantid}"}, "tenant_not_allowed"),
    ({"iss": f"https://login.microsoftonline.com/{OTHER_TENANT}/{TENANT}/v2.0"}, "wrong_issuer"),
    ({"iss": f"https://login.microsoftonline.com/{TENANT}/v2.0/"}, "wrong_issuer"),
    ({"iss": f"https://login.microsoftonline.com/{TENANT}\u200b/v2.0"}, "tenant_not_allowed"),
    ({"iss": f"https://login.microsoftonline.com/{TENANT}/v2\uff0e0"}, "wrong_issuer"),  # fullwidth dot
    ({"iss": f"https://login.microsoftonline.com/{OTHER_TENANT}/v2.0", "tid": TENANT}, "tenant_not_allowed"),
    ({"iss": f"https://sts.windows.net/{TENANT}/"}, "wrong_issuer"),
    ({"aud": [ENTRA_APP.upper()]}, "wrong_audience"),
    ({"aud": None}, "wrong_audience"),
    ({"aud": [ENTRA_APP, 1]}, "wrong_audience"),
]


@pytest.mark.parametrize(("claims", "code"), ENTRA_REFUSED)
def test_entra_refuses(dev_idp, configure: Configure, capsys, claims, code):
    configure(settings("entra", dev_idp, IDP_ENTRA_ALLOWED_TENANTS=f"{TENANT},{HEX.upper()}"))
    assert decide(dev_idp.mint_preset("entra", iss=HEX_ISS, tid=HEX), capsys) == ("allow", "allowed")
    assert decide(dev_idp.mint_preset("entra", **claims), capsys) == ("unauthorized", code)


@pytest.mark.parametrize(
    "claims",
    [
        {"azp": None},  # no client at all
        {"azp": [ENTRA_CLIENT]},
        {"azp": 1},
        {"client_id": None, "azp": "other", "appid": ENTRA_CLIENT},  # azp wins over appid
    ],
)
def test_entra_client_allowlist_refuses(dev_idp, configure: Configure, capsys, claims):
    configure(settings("entra", dev_idp, IDP_CLIENT_IDS=ENTRA_CLIENT))
    assert decide(dev_idp.mint_preset("entra", **claims), capsys) == ("unauthorized", "wrong_client")


def test_entra_ignores_client_claims_it_never_issues(dev_idp, configure: Configure, capsys):
    configure(settings("entra", dev_idp, IDP_CLIENT_IDS=ENTRA_CLIENT))
    token = dev_idp.mint_preset("entra", client_id=0, cid="other")  # azp alone names the client
    assert decide(token, capsys) == ("allow", "allowed")


def test_entra_id_token_is_not_an_access_token(dev_idp, configure: Configure, capsys):
    # The README's own configuration: IDP_AUDIENCE holds the app's client id. An ID token that Entra issues
    # to the same app registration (a SPA signing in with it) carries exactly that aud, the v2 issuer, tid,
    # typ JWT, and no scp/roles; nothing in the Entra preset tells it from an access token.
    configure(settings("entra", dev_idp))
    id_token = dev_idp.mint_preset(
        "entra",
        aud=ENTRA_APP,
        azp=None,
        scp=None,
        roles=None,
        nonce="n-0S6_WzA2Mj",
        email="jdoe@example.com",
        preferred_username="jdoe@example.com",
        aio="AXQAi/8TAAAA",
    )
    assert decide(id_token, capsys)[0] == "unauthorized"


# -- generic issuer templates -------------------------------------------------------------------------


def _template(dev_idp, **extra: Any) -> dict[str, str]:
    provider = {
        "provider": "jwks",
        "issuer": "https://id.example.com/{tenantid}/",
        "allowed_tenants": ["acme"],
        "tenant_claim": "org",
        "jwks_url": dev_idp.jwks_url,
        "audience": ["orders"],
        **extra,
    }
    return {"IDP_PROVIDERS": json.dumps([provider]), "IDP_ALLOW_LOOPBACK_HTTP": "true"}


@pytest.mark.parametrize(
    ("claims", "code"),
    [
        ({"iss": "https://id.example.com/{tenantid}/", "org": "{tenantid}"}, "tenant_not_allowed"),
        ({"iss": "https://id.example.com/ACME/", "org": "ACME"}, "tenant_not_allowed"),
        ({"iss": "https://id.example.com/acme/", "org": ["acme"]}, "tenant_mismatch"),
        ({"iss": "https://id.example.com/acme/", "tid": "acme"}, "tenant_mismatch"),  # the claim named, not tid
        ({"iss": "https://id.example.com/acme/x/", "org": "acme/x"}, "wrong_issuer"),
        ({"iss": "https://id.example.com/acme", "org": "acme"}, "wrong_issuer"),
    ],
)
def test_generic_template_refuses(dev_idp, configure: Configure, capsys, claims, code):
    configure(_template(dev_idp))
    assert decide(dev_idp.mint(aud="orders", **claims), capsys) == ("unauthorized", code)


# -- JSON Pointer claims: odd shapes, look-alike top-level claims --------------------------------------

KEYCLOAK_ROUTES = {
    "ANY /admin/{proxy+}": {"claims": {"/realm_access/roles": ["shop-admin"]}},
    "POST /orders/{id}/refund": {"claims": {"/resource_access/orders-api/roles": ["refund"]}},
    "GET /ns": {"claims": {"/https:~1~1example.com~1claims/roles": ["analyst"]}},
    "GET /tilde": {"claims": {"/a~0b/c": ["yes"]}},
    "GET /level": {"claims": {"level": [1]}},
    "GET /flag": {"claims": {"flag": [True]}},
    "GET /orders": {},
}


@pytest.mark.parametrize(
    ("route", "claims"),
    [
        # a top-level claim literally named like the pointer, or like its dotted spelling
        ("GET /admin/x", {"realm_access": None, "/realm_access/roles": ["shop-admin"]}),
        ("GET /admin/x", {"realm_access": None, "realm_access.roles": ["shop-admin"]}),
        ("GET /admin/x", {"realm_access": None, "roles": ["shop-admin"]}),
        # other shapes on the way or at the end
        ("GET /admin/x", {"realm_access": [{"roles": ["shop-admin"]}]}),
        ("GET /admin/x", {"realm_access": {"roles": {"shop-admin": True}}}),
        ("GET /admin/x", {"realm_access": {"roles": [["shop-admin"]]}}),
        ("GET /admin/x", {"realm_access": {"roles": [{"name": "shop-admin"}]}}),
        ("GET /admin/x", {"realm_access": {"roles": "shop-admin extra"}}),
        ("GET /admin/x", {"realm_access": {"Roles": ["shop-admin"]}}),
        ("GET /admin/x", {"realm_access": {"roles": ["Shop-Admin", "shop-admin "]}}),
        ("GET /admin/x", {"realm_access": "shop-admin"}),
        ("GET /admin/x", {"realm_access": {"realm_access": {"roles": ["shop-admin"]}}}),
        # a member name holding '/' is not the path that walks through it
        ("POST /orders/7/refund", {"resource_access": {"orders-api/roles": ["refund"]}}),
        (
            "POST /orders/7/refund",
            {"resource_access": {"orders-api": {"roles": ["view"]}}, "orders-api": {"roles": ["refund"]}},
        ),
        ("GET /ns", {"https://example.com/claims/roles": ["analyst"]}),
        ("GET /ns", {"https:": {"": {"example.com": {"claims": {"roles": ["analyst"]}}}}}),
        ("GET /tilde", {"a~0b": {"c": ["yes"]}}),
        ("GET /tilde", {"a/b": {"c": ["yes"]}}),
        # numbers versus strings and booleans
        ("GET /level", {"level": "1"}),
        ("GET /level", {"level": True}),
        ("GET /level", {"level": [True, "1"]}),
        ("GET /level", {"level": 1.0000001}),
        ("GET /flag", {"flag": 1}),
        ("GET /flag", {"flag": "true"}),
        ("GET /flag", {"flag": [1, "true"]}),
    ],
)
def test_nested_rules_deny_odd_shapes(dev_idp, configure: Configure, capsys, route, claims):
    configure(settings("keycloak", dev_idp, IDP_ROUTES=json.dumps(KEYCLOAK_ROUTES)))
    base = {"realm_access": {"roles": ["offline_access"]}, "resource_access": {}}
    token = dev_idp.mint_preset("keycloak", **{**base, **claims})
    assert decide(token, capsys, route) == ("deny", "insufficient_scope")


@pytest.mark.parametrize(
    ("route", "claims"),
    [
        ("GET /ns", {"https://example.com/claims": {"roles": ["analyst"]}}),
        ("GET /tilde", {"a~b": {"c": ["yes"]}}),
        ("GET /level", {"level": 1.0}),
        ("GET /flag", {"flag": [False, True]}),
    ],
)
def test_nested_rules_allow_the_intended_shapes(dev_idp, configure: Configure, capsys, route, claims):
    configure(settings("keycloak", dev_idp, IDP_ROUTES=json.dumps(KEYCLOAK_ROUTES)))
    assert decide(dev_idp.mint_preset("keycloak", **claims), capsys, route) == ("allow", "allowed")


def test_duplicate_member_names_at_depth_are_malformed(dev_idp, configure: Configure, capsys):
    configure(settings("keycloak", dev_idp, IDP_ROUTES=json.dumps(KEYCLOAK_ROUTES)))
    body = cognito_claims() | {"iss": "https://sso.example.com/realms/shop", "aud": "orders-api"}
    body = {k: v for k, v in body.items() if v is not None}
    text = json.dumps(body)[:-1] + ', "realm_access": {"roles": ["x"], "roles": ["shop-admin"]}}'
    assert decide(raw_token(dev_idp, text, {"typ": "JWT"}), capsys, "GET /admin/x") == (
        "unauthorized",
        "malformed_token",
    )


def test_deep_nesting_neither_crashes_nor_allows(dev_idp, configure: Configure, capsys):
    configure(
        settings(
            "keycloak",
            dev_idp,
            IDP_ROUTES=json.dumps(KEYCLOAK_ROUTES),
            IDP_CONTEXT_CLAIMS="deep,roles=/realm_access/roles",
        )
    )
    for depth in (50, 400, 900, 5000, 100000):
        deep: Any = ["shop-admin"]
        for _ in range(depth):
            deep = {"roles": deep}
        try:
            token = dev_idp.mint_preset("keycloak", realm_access=deep, deep=deep)
        except RecursionError:
            continue  # the encoder cannot build it either
        outcome = decide(token, capsys, "GET /admin/x")
        assert outcome[0] in ("deny", "unauthorized"), (depth, outcome)


# -- cached verdicts keep what nested rules read -------------------------------------------------------


def test_cached_verdicts_decide_as_fresh_ones(dev_idp, configure: Configure, capsys):
    routes = dict(KEYCLOAK_ROUTES)
    configure(
        settings(
            "keycloak",
            dev_idp,
            IDP_ROUTES=json.dumps(routes),
            IDP_CONTEXT_CLAIMS="roles=/realm_access/roles,refund=/resource_access/orders-api/roles",
            IDP_USAGE_IDENTIFIER_CLAIM="/ext/api_key",
        )
    )
    token = dev_idp.mint_preset("keycloak", ext={"api_key": "k-123", "other": 1}, level=1)
    order = ["GET /orders", "GET /admin/x", "POST /orders/7/refund", "GET /level", "GET /ns", "GET /admin/x"]
    cached = [decide(token, capsys, route) for route in order]
    assert cached[1:3] == [("allow", "allowed")] * 2 and cached[3] == ("allow", "allowed")
    responses = [handler.handler(rest_token(token, f"{API}/{r.replace(' ', '')}"), None) for r in ("GET /orders",)]
    assert responses[0]["usageIdentifierKey"] == "k-123"
    assert responses[0]["context"]["roles"] == "offline_access shop-admin"
    assert responses[0]["context"]["refund"] == '["refund"]' or responses[0]["context"]["refund"] == "refund"
    v2 = handler.handler(http_v2(token, f"{API}/GET/orders", "GET /orders"), None)
    assert v2["context"]["refund"] == ["refund"]
    # the same, fresh (a rebuilt handler has an empty verdict cache)
    handler.init()
    fresh = [decide(token, capsys, route) for route in order]
    assert fresh == cached


# -- configuration mistakes are refused, not widened ---------------------------------------------------


def _refused(monkeypatch, env: dict[str, str]) -> bool:
    for name in [n for n in __import__("os").environ if n.startswith("IDP_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return handler.init() is None


COGNITO_ENV = {"IDP_PROVIDER": "cognito", "IDP_COGNITO_USER_POOL_ID": POOL, "IDP_COGNITO_CLIENT_IDS": COGNITO_CLIENT}
ENTRA_ENV = {
    "IDP_PROVIDER": "entra",
    "IDP_ENTRA_TENANT_ID": "organizations",
    "IDP_ENTRA_ALLOWED_TENANTS": TENANT,
    "IDP_AUDIENCE": ENTRA_APP,
}


@pytest.mark.parametrize(
    "env",
    [
        {**COGNITO_ENV, "IDP_CLIENT_IDS": "x"},
        {**COGNITO_ENV, "IDP_ENTRA_TENANT_ID": TENANT},
        {**COGNITO_ENV, "IDP_ENTRA_ALLOWED_TENANTS": TENANT},
        {**COGNITO_ENV, "IDP_AUTH0_DOMAIN": "x.auth0.com"},
        {**COGNITO_ENV, "IDP_COGNITO_CLIENT_IDS": ""},
        {**COGNITO_ENV, "IDP_COGNITO_CLIENT_IDS": " , "},
        {**COGNITO_ENV, "IDP_COGNITO_CLIENT_IDS": "[]"},
        {**COGNITO_ENV, "IDP_COGNITO_USER_POOL_ID": "eu-west-1_Ab/../x"},
        {**COGNITO_ENV, "IDP_COGNITO_USER_POOL_ID": "evil.com/eu-west-1_Ab"},
        {**COGNITO_ENV, "IDP_COGNITO_TOKEN_USE": "ID"},
        {**ENTRA_ENV, "IDP_COGNITO_CLIENT_IDS": "x"},
        {**ENTRA_ENV, "IDP_COGNITO_TOKEN_USE": "id"},
        {**ENTRA_ENV, "IDP_ENTRA_ALLOWED_TENANTS": ""},
        {**ENTRA_ENV, "IDP_ENTRA_ALLOWED_TENANTS": "contoso.onmicrosoft.com"},
        {**ENTRA_ENV, "IDP_ENTRA_ALLOWED_TENANTS": "{tenantid}"},
        {**ENTRA_ENV, "IDP_ENTRA_TENANT_ID": "consumers"},
        {**ENTRA_ENV, "IDP_ENTRA_TENANT_ID": TENANT, "IDP_ENTRA_ALLOWED_TENANTS": OTHER_TENANT},
        {**ENTRA_ENV, "IDP_AUDIENCE": ""},
        {**ENTRA_ENV, "IDP_ENTRA_TOKEN_VERSION": "3"},
        {**ENTRA_ENV, "IDP_COGNITO_ISSUER_TYPE": "updated"},
        {**COGNITO_ENV, "IDP_COGNITO_ISSUER_TYPE": "multi"},
        {"IDP_PROVIDER": "oidc", "IDP_ISSUER": "https://i.example/", "IDP_AUDIENCE": "", "IDP_CLIENT_IDS": "c"},
        {
            "IDP_PROVIDER": "oidc",
            "IDP_ISSUER": "https://i.example/",
            "IDP_AUDIENCE": "a",
            "IDP_ALLOWED_TENANTS": "acme",
        },
        {
            "IDP_PROVIDER": "oidc",
            "IDP_ISSUER": "https://i.example/{tenantid}/{tenantid}/",
            "IDP_AUDIENCE": "a",
            "IDP_ALLOWED_TENANTS": "acme",
        },
        {
            "IDP_PROVIDER": "jwks",
            "IDP_ISSUER": "https://i.example/{tenantid}/",
            "IDP_AUDIENCE": "a",
            "IDP_JWKS_URL": "https://i.example/k",
            "IDP_ALLOWED_TENANTS": "a/b",
        },
        {
            "IDP_PROVIDERS": json.dumps(
                [
                    {
                        "provider": "cognito",
                        "cognito_user_pool_id": POOL,
                        "cognito_client_ids": ["c"],
                        "client_ids": ["c"],
                    }
                ]
            )
        },
        {
            "IDP_PROVIDERS": json.dumps(
                [
                    {
                        "provider": "jwks",
                        "issuer": "https://i.example/",
                        "jwks_url": "https://i.example/k",
                        "audience": ["a"],
                        "cognito_client_ids": ["c"],
                    }
                ]
            )
        },
        {
            "IDP_PROVIDERS": json.dumps(
                [
                    {"provider": "cognito", "name": "a", "cognito_user_pool_id": POOL, "cognito_client_ids": ["c"]},
                    {
                        "provider": "cognito",
                        "name": "b",
                        "cognito_user_pool_id": POOL,
                        "cognito_client_ids": ["d"],
                        "cognito_token_use": "id",
                    },
                ]
            )
        },
        {
            "IDP_PROVIDERS": json.dumps(
                [
                    {
                        "provider": "entra",
                        "name": "a",
                        "entra_tenant_id": "common",
                        "entra_allowed_tenants": [TENANT],
                        "audience": ["x"],
                    },
                    {"provider": "entra", "name": "b", "entra_tenant_id": TENANT, "audience": ["y"]},
                ]
            )
        },
        {**COGNITO_ENV, "IDP_CONTEXT_CLAIMS": "/a/"},
        {**COGNITO_ENV, "IDP_ROUTES": json.dumps({"GET /x": {"claims": {"/a~2": ["x"]}}})},
        {**COGNITO_ENV, "IDP_ROUTES": json.dumps({"GET /x": {"claims": {"//": ["x"]}}})},
        {**COGNITO_ENV, "IDP_USAGE_IDENTIFIER_CLAIM": "/"},
    ],
)
def test_configuration_mistakes_are_refused(monkeypatch, env):
    assert _refused(monkeypatch, env)
    monkeypatch.undo()
    handler.init()


@pytest.mark.parametrize(
    "env",
    [
        {"IDP_PROVIDER": "oidc", "IDP_ISSUER": "https://i.example/", "IDP_AUDIENCE": '[""]'},
        {"IDP_PROVIDER": "oidc", "IDP_ISSUER": "https://i.example/", "IDP_AUDIENCE": "a", "IDP_CLIENT_IDS": '[""]'},
        {**COGNITO_ENV, "IDP_COGNITO_CLIENT_IDS": '[""]'},
        {**COGNITO_ENV, "IDP_COGNITO_CLIENT_IDS": '[" "]'},
    ],
)
def test_empty_list_entries_are_refused(monkeypatch, env):
    assert _refused(monkeypatch, env)
    monkeypatch.undo()
    handler.init()


# Was FINDING 4 at 48f958c (silently ignored); refused since 64c7e23.
@pytest.mark.parametrize(
    "env",
    [
        {**COGNITO_ENV, "IDP_ISSUER": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_X"},
        {**COGNITO_ENV, "IDP_ALLOWED_TENANTS": "acme"},
        {**ENTRA_ENV, "IDP_ALLOWED_TENANTS": OTHER_TENANT},
        {**ENTRA_ENV, "IDP_TENANT_CLAIM": "org"},
        {**ENTRA_ENV, "IDP_ISSUER": "https://login.microsoftonline.com/{tenantid}/v2.0"},
    ],
)
def test_generic_variables_with_a_preset_are_refused(monkeypatch, env):
    assert _refused(monkeypatch, env)
    monkeypatch.undo()
    handler.init()


# -- context keys ------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ["client_id=/ext/client", "sub=/ext/sub", "iss=/ext/iss", "scope", "provider"])
def test_context_claims_cannot_take_the_identity_keys(dev_idp, monkeypatch, spec):
    assert _refused(monkeypatch, {**settings("keycloak", dev_idp), "IDP_CONTEXT_CLAIMS": spec})
    monkeypatch.undo()
    handler.init()


# -- no token in logs or doctor output ---------------------------------------------------------------

LEAK_CASES = [
    ("cognito", {}, {}),
    ("cognito", {"client_id": "another"}, {}),
    ("cognito", {"token_use": "id", "aud": COGNITO_CLIENT, "client_id": None}, {}),
    ("cognito", {"iss": f"https://cognito-idp.us-east-1.amazonaws.com/{POOL}"}, {}),
    ("entra", {}, {}),
    ("entra", {"tid": OTHER_TENANT}, {}),
    ("entra", {"iss": f"https://login.microsoftonline.com/{OTHER_TENANT}/v2.0", "tid": OTHER_TENANT}, {}),
    ("entra", {"iss": f"https://sts.windows.net/{TENANT}/"}, {}),
    ("entra", {"azp": "other"}, {"IDP_CLIENT_IDS": ENTRA_CLIENT}),
    ("keycloak", {"azp": "evil"}, {"IDP_CLIENT_IDS": "orders-web"}),
]


def _pieces(token: str) -> list[str]:
    return [part[i : i + 24] for part in token.split(".") for i in range(0, max(len(part) - 24, 1), 24)]


@pytest.mark.parametrize(("preset", "claims", "extra"), LEAK_CASES)
def test_no_token_in_handler_logs_or_doctor(dev_idp, monkeypatch, capfd, preset, claims, extra):
    from idp_authorizer.tools import cli

    env = {**settings(preset, dev_idp, **extra), "IDP_HTTP_TIMEOUT_SECONDS": "1", "IDP_LOG_LEVEL": "DEBUG"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    token = dev_idp.mint_preset(preset, **claims)
    handler.init()
    for event in (rest_token(token, f"{API}/GET/pets"), http_v2(token, f"{API}/GET/pets", "GET /pets")):
        with contextlib.suppress(Exception):
            handler.handler(event, None)
    cli.main(["doctor", "--token", token])
    cli.main(["doctor", "--token", f"Bearer {token}"])
    out, err = capfd.readouterr()
    leaked = [piece for piece in _pieces(token) if piece in out or piece in err]
    assert not leaked
    monkeypatch.undo()
    handler.init()


# -- introspection honours IDP_CLIENT_IDS ------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"client_id": "allowed-app"}, "allow"),
        ({"client_id": "other-app"}, "unauthorized"),
        ({"client_id": None}, "unauthorized"),
        ({"client_id": ""}, "unauthorized"),
        ({"client_id": ["allowed-app"]}, "unauthorized"),
        ({"client_id": 1, "azp": "allowed-app"}, "unauthorized"),
        ({"client_id": None, "azp": "allowed-app"}, "allow"),
    ],
)
def test_introspection_client_allowlist(configure: Configure, fields, expected):
    from introspection_server import BASIC, IntrospectionServer
    from outcomes import outcome_of

    with IntrospectionServer() as srv:
        configure(
            {
                "IDP_PROVIDER": "introspection",
                "IDP_INTROSPECTION_URL": srv.url,
                "IDP_CLIENT_ID": BASIC.client_id,
                "IDP_CLIENT_SECRET": BASIC.client_secret,
                "IDP_ALLOW_LOOPBACK_HTTP": "true",
                "IDP_CLIENT_IDS": "allowed-app",
            }
        )
        token = srv.issue(sub="u1", **fields)
        for _ in range(2):  # fresh, then from the caches
            assert outcome_of(lambda: handler.handler(rest_token(token), None)) == expected


# -- the client claim is the first present of four, whichever the IdP really uses --------------------


def test_keycloak_client_is_azp_even_with_another_client_claim(dev_idp, configure: Configure, capsys):
    # Keycloak names the client in azp; a realm whose admin added a user-attribute mapper emitting
    # "client_id" (or any custom claim of that name) lets that value decide the client allowlist.
    configure(settings("keycloak", dev_idp, IDP_CLIENT_IDS="orders-web"))
    token = dev_idp.mint_preset("keycloak", azp="evil-app", client_id="orders-web")
    assert decide(token, capsys, "GET /orders") == ("unauthorized", "wrong_client")


def test_entra_client_is_azp(dev_idp, configure: Configure, capsys):
    configure(settings("entra", dev_idp, IDP_CLIENT_IDS=ENTRA_CLIENT))
    token = dev_idp.mint_preset("entra", azp="evil-app", client_id=ENTRA_CLIENT)
    assert decide(token, capsys) == ("unauthorized", "wrong_client")


def test_entra_id_token_does_not_meet_the_readme_roles_rule(dev_idp, configure: Configure, capsys):
    # README's Entra example: DELETE /orders/{id} needs roles Orders.Admin. Entra puts the user's app roles
    # in ID tokens too (roles claim), so the SPA's ID token meets the rule without any API scope.
    routes = {"DELETE /orders/{id}": {"claims": {"roles": ["Orders.Admin"]}}, "GET /orders": ["orders.read"]}
    configure(settings("entra", dev_idp, IDP_ROUTES=json.dumps(routes)))
    id_token = dev_idp.mint_preset("entra", aud=ENTRA_APP, azp=None, scp=None, nonce="n-0S6_WzA2Mj")
    assert decide(id_token, capsys, "GET /orders") == ("unauthorized", "wrong_client")  # no azp
    assert decide(id_token, capsys, "DELETE /orders/7")[0] != "allow"


@pytest.mark.parametrize("issuer_type", ["original", "UPDATED"])
def test_cognito_issuer_types_accept_their_own_issuer_only(dev_idp, configure: Configure, capsys, issuer_type):
    configure(settings("cognito", dev_idp, IDP_COGNITO_ISSUER_TYPE=issuer_type))
    original = f"https://cognito-idp.eu-west-1.amazonaws.com/{POOL}"
    updated = f"https://issuer-cognito-idp.eu-west-1.amazonaws.com/{POOL}"
    mine, other = (original, updated) if issuer_type == "original" else (updated, original)
    assert decide(dev_idp.mint_preset("cognito", iss=mine), capsys) == ("allow", "allowed")
    assert decide(dev_idp.mint_preset("cognito", iss=other), capsys) == ("unauthorized", "wrong_issuer")
    other_region = mine.replace("eu-west-1.amazonaws", "eu-central-1.amazonaws")
    assert decide(dev_idp.mint_preset("cognito", iss=other_region), capsys) == ("unauthorized", "wrong_issuer")
