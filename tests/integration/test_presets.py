"""The IdP presets through the real handler: Cognito, Entra (multi- and single-tenant, v1 and v2),
Okta and Keycloak, with tokens shaped as each issues them (:mod:`idp_authorizer.tools.presets`),
signed by the dev IdP whose key set each preset reads through the ``IDP_JWKS_URL`` override.

Each refusal is checked by its outcome (401) and by the reason code of the decision log line.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from event_factory import ARN, http_v2, rest_token
from iam_oracle import iam_allows
from outcomes import outcome_of

from idp_authorizer import handler
from idp_authorizer.aws.runtime import Authorizer
from idp_authorizer.tools.devidp import DevIdp
from idp_authorizer.tools.presets import (
    COGNITO_CLIENT,
    ENTRA_APP,
    OTHER_TENANT,
    POOL,
    PRESETS,
    TENANT,
)

API = ARN.rsplit("/", 2)[0]
Configure = Callable[[dict[str, str]], Authorizer]


def settings(preset: str, idp: DevIdp, **extra: str) -> dict[str, str]:
    return {**PRESETS[preset].settings(idp.jwks_url), "IDP_ALLOW_LOOPBACK_HTTP": "true", **extra}


def decide(token: str, capsys: pytest.CaptureFixture[str], route: str = "GET /pets") -> tuple[str, str]:
    """What API Gateway does with the answer to a REST TOKEN event for ``route`` (the policy evaluated on
    the request's ARN), and the reason code the decision log gives."""
    capsys.readouterr()
    method, path = route.split(" ")
    arn = f"{API}/{method}{path}"
    outcome = outcome_of(lambda: handler.handler(rest_token(token, arn), None))
    if outcome in ("allow", "deny"):
        outcome = "allow" if iam_allows(handler.handler(rest_token(token, arn), None), arn) else "deny"
    return outcome, decision_code(capsys)


def decision_code(capsys: pytest.CaptureFixture[str]) -> str:
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"idp_authorizer.decision"' in line]
    assert lines, "no decision line"
    return str(lines[-1]["code"])


# -- Amazon Cognito -----------------------------------------------------------------------------


def test_cognito_access_token_is_allowed_without_an_audience(dev_idp, configure: Configure, capsys):
    configure(settings("cognito", dev_idp))
    token = dev_idp.mint_preset("cognito")
    assert decide(token, capsys) == ("allow", "allowed")
    response = handler.handler(rest_token(token, f"{API}/GET/pets"), None)
    assert response["principalId"] == "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
    assert response["context"]["client_id"] == COGNITO_CLIENT
    assert response["context"]["iss"] == f"https://cognito-idp.eu-west-1.amazonaws.com/{POOL}"


@pytest.mark.parametrize(
    ("claims", "code"),
    [
        ({"client_id": "another-app-client"}, "wrong_client"),
        ({"client_id": None}, "wrong_client"),
        ({"token_use": "id"}, "wrong_token_use"),
        ({"token_use": None}, "wrong_token_use"),
        ({"iss": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Other"}, "wrong_issuer"),
        ({"iss": f"https://cognito-idp.us-east-1.amazonaws.com/{POOL}"}, "wrong_issuer"),
    ],
)
def test_cognito_refusals(dev_idp, configure: Configure, capsys, claims: dict[str, Any], code: str):
    configure(settings("cognito", dev_idp))
    assert decide(dev_idp.mint_preset("cognito", **claims), capsys) == ("unauthorized", code)


def test_cognito_id_tokens_when_configured_name_their_client_in_aud(dev_idp, configure: Configure, capsys):
    configure(settings("cognito", dev_idp, IDP_COGNITO_TOKEN_USE="id"))
    id_token = {"token_use": "id", "aud": COGNITO_CLIENT, "client_id": None, "cognito:username": "jdoe"}
    assert decide(dev_idp.mint_preset("cognito", **id_token), capsys) == ("allow", "allowed")
    assert decide(dev_idp.mint_preset("cognito"), capsys) == ("unauthorized", "wrong_token_use")
    wrong_client = {**id_token, "aud": "another-app-client"}
    assert decide(dev_idp.mint_preset("cognito", **wrong_client), capsys) == ("unauthorized", "wrong_client")


def test_cognito_machine_to_machine_token_with_resource_scopes(dev_idp, configure: Configure, capsys):
    routes = {"GET /orders": {"scopes": ["orders-api/read"]}, "POST /orders": {"scopes": ["orders-api/write"]}}
    configure(settings("cognito", dev_idp, IDP_ROUTES=json.dumps(routes)))
    m2m = dev_idp.mint_preset(
        "cognito", sub=COGNITO_CLIENT, username=None, scope="orders-api/read", **{"cognito:groups": None}
    )
    assert decide(m2m, capsys, "GET /orders") == ("allow", "allowed")
    assert decide(m2m, capsys, "POST /orders") == ("deny", "insufficient_scope")


def test_cognito_audience_is_checked_when_configured(dev_idp, configure: Configure, capsys):
    configure(settings("cognito", dev_idp, IDP_AUDIENCE="https://orders.example.com"))
    assert decide(dev_idp.mint_preset("cognito"), capsys) == ("unauthorized", "wrong_audience")
    bound = dev_idp.mint_preset("cognito", aud="https://orders.example.com")
    assert decide(bound, capsys) == ("allow", "allowed")


def test_cognito_groups_in_route_rules_and_context(dev_idp, configure: Configure, capsys):
    routes = {"ANY /admin/{proxy+}": {"claims": {"cognito:groups": ["admins"]}}, "GET /pets": {}}
    configure(settings("cognito", dev_idp, IDP_ROUTES=json.dumps(routes), IDP_CONTEXT_CLAIMS="cognito:groups"))
    admin = dev_idp.mint_preset("cognito")
    staff = dev_idp.mint_preset("cognito", **{"cognito:groups": ["staff"]})
    nobody = dev_idp.mint_preset("cognito", **{"cognito:groups": None})
    assert decide(admin, capsys, "DELETE /admin/users/7") == ("allow", "allowed")
    assert decide(staff, capsys, "DELETE /admin/users/7") == ("deny", "insufficient_scope")
    assert decide(nobody, capsys, "DELETE /admin/users/7") == ("deny", "insufficient_scope")
    assert decide(staff, capsys, "GET /pets") == ("allow", "allowed")
    v2 = handler.handler(http_v2(admin, f"{API}/GET/pets", "GET /pets"), None)
    assert v2["context"]["cognito:groups"] == ["admins", "staff"]  # payload 2.0 keeps the list
    v1 = handler.handler(rest_token(admin, f"{API}/GET/pets"), None)
    assert v1["context"]["cognito:groups"] == "admins staff"  # REST context values are strings


# -- Microsoft Entra ID -------------------------------------------------------------------------


def test_entra_multi_tenant_token_of_an_allowed_tenant_is_allowed(dev_idp, configure: Configure, capsys):
    configure(settings("entra", dev_idp))
    assert decide(dev_idp.mint_preset("entra"), capsys) == ("allow", "allowed")
    assert decide(dev_idp.mint_preset("entra", aud="api://orders"), capsys) == ("allow", "allowed")  # App ID URI


@pytest.mark.parametrize(
    ("claims", "code"),
    [
        # iss and tid disagree: a token of one tenant dressed as another's
        ({"tid": OTHER_TENANT}, "tenant_mismatch"),
        ({"tid": None}, "tenant_mismatch"),
        # a real tenant's own token, but not a tenant this API serves
        ({"iss": f"https://login.microsoftonline.com/{OTHER_TENANT}/v2.0", "tid": OTHER_TENANT}, "tenant_not_allowed"),
        # the template itself, or another issuer shape, is no issuer
        ({"iss": "https://login.microsoftonline.com/{tenantid}/v2.0"}, "tenant_not_allowed"),
        ({"iss": f"https://login.microsoftonline.com/{TENANT}/v2.0/extra"}, "wrong_issuer"),
        ({"iss": f"https://sts.windows.net/{TENANT}/", "ver": "1.0"}, "wrong_issuer"),
        ({"aud": "00000003-0000-0000-c000-000000000000"}, "wrong_audience"),  # a Microsoft Graph token
    ],
)
def test_entra_refusals(dev_idp, configure: Configure, capsys, claims: dict[str, Any], code: str):
    configure(settings("entra", dev_idp))
    assert decide(dev_idp.mint_preset("entra", **claims), capsys) == ("unauthorized", code)


def test_entra_single_tenant_accepts_that_tenant_only(dev_idp, configure: Configure, capsys):
    configure(settings("entra", dev_idp, IDP_ENTRA_TENANT_ID=TENANT.upper(), IDP_ENTRA_ALLOWED_TENANTS=""))
    assert decide(dev_idp.mint_preset("entra"), capsys) == ("allow", "allowed")
    other = {"iss": f"https://login.microsoftonline.com/{OTHER_TENANT}/v2.0", "tid": OTHER_TENANT}
    assert decide(dev_idp.mint_preset("entra", **other), capsys) == ("unauthorized", "tenant_not_allowed")
    assert decide(dev_idp.mint_preset("entra", tid=OTHER_TENANT), capsys) == ("unauthorized", "tenant_mismatch")


def test_entra_v1_tokens(dev_idp, configure: Configure, capsys):
    configure(settings("entra", dev_idp, IDP_ENTRA_TOKEN_VERSION="1", IDP_AUDIENCE="api://orders"))
    v1 = {"iss": f"https://sts.windows.net/{TENANT}/", "ver": "1.0", "aud": "api://orders", "azp": None}
    token = dev_idp.mint_preset("entra", appid="v1-client", **v1)
    assert decide(token, capsys) == ("allow", "allowed")
    assert handler.handler(rest_token(token, f"{API}/GET/pets"), None)["context"]["client_id"] == "v1-client"
    assert decide(dev_idp.mint_preset("entra", aud="api://orders"), capsys) == ("unauthorized", "wrong_issuer")


def test_entra_roles_and_scp_in_route_rules(dev_idp, configure: Configure, capsys):
    routes = {
        "DELETE /orders/{id}": {"claims": {"roles": ["Orders.Admin"]}},
        "GET /orders": {"scopes": ["orders.read"]},
    }
    configure(settings("entra", dev_idp, IDP_ROUTES=json.dumps(routes), IDP_CONTEXT_CLAIMS="roles,tid"))
    admin = dev_idp.mint_preset("entra")
    reader = dev_idp.mint_preset("entra", roles=None, scp="orders.read")
    assert decide(admin, capsys, "DELETE /orders/7") == ("allow", "allowed")
    assert decide(reader, capsys, "DELETE /orders/7") == ("deny", "insufficient_scope")
    assert decide(reader, capsys, "GET /orders") == ("allow", "allowed")
    context = handler.handler(rest_token(admin, f"{API}/GET/orders"), None)["context"]
    assert (context["roles"], context["tid"]) == ("Orders.Admin", TENANT)


def test_entra_client_allowlist(dev_idp, configure: Configure, capsys):
    configure(settings("entra", dev_idp, IDP_CLIENT_IDS="c44b4083-3bb0-49c1-b47d-974e53cbdf3c"))
    assert decide(dev_idp.mint_preset("entra"), capsys) == ("allow", "allowed")
    assert decide(dev_idp.mint_preset("entra", azp="some-other-app"), capsys) == ("unauthorized", "wrong_client")
    assert decide(dev_idp.mint_preset("entra", azp=None), capsys) == ("unauthorized", "wrong_client")


def test_entra_id_tokens_of_the_same_app_are_not_access_tokens(dev_idp, configure: Configure, capsys):
    # An ID token has the app's client id as aud, the v2 issuer, tid and typ JWT, and may carry roles;
    # it has no azp and no scp.
    routes = {"DELETE /orders/{id}": {"claims": {"roles": ["Orders.Admin"]}}, "GET /pets": {}}
    configure(settings("entra", dev_idp, IDP_ROUTES=json.dumps(routes)))
    id_token = dev_idp.mint_preset("entra", aud=ENTRA_APP, azp=None, scp=None, nonce="n-0S6_WzA2Mj")
    assert decide(id_token, capsys, "DELETE /orders/7") == ("unauthorized", "wrong_client")
    assert decide(id_token, capsys, "GET /pets") == ("unauthorized", "wrong_client")
    no_scope_nor_role = dev_idp.mint_preset("entra", scp=None, roles=None)
    assert decide(no_scope_nor_role, capsys) == ("unauthorized", "not_an_access_token")
    roles_only = dev_idp.mint_preset("entra", scp=None)  # an app-only (client credentials) token
    assert decide(roles_only, capsys, "DELETE /orders/7") == ("allow", "allowed")


def test_entra_reads_its_own_client_claim_only(dev_idp, configure: Configure, capsys):
    configure(settings("entra", dev_idp, IDP_CLIENT_IDS="trusted-app"))
    posing = dev_idp.mint_preset("entra", azp="evil-app", client_id="trusted-app", appid="trusted-app")
    assert decide(posing, capsys) == ("unauthorized", "wrong_client")


def test_an_issuer_template_for_another_multi_tenant_idp(dev_idp, configure: Configure, capsys):
    provider = {
        "provider": "jwks",
        "issuer": "https://id.example.com/{tenantid}/",
        "allowed_tenants": ["acme", "globex"],
        "tenant_claim": "org",
        "jwks_url": dev_idp.jwks_url,
        "audience": ["orders"],
    }
    configure({"IDP_PROVIDERS": json.dumps([provider]), "IDP_ALLOW_LOOPBACK_HTTP": "true"})
    good = dev_idp.mint(iss="https://id.example.com/acme/", org="acme", aud="orders")
    assert decide(good, capsys) == ("allow", "allowed")
    crossed = dev_idp.mint(iss="https://id.example.com/acme/", org="globex", aud="orders")
    assert decide(crossed, capsys) == ("unauthorized", "tenant_mismatch")
    stranger = dev_idp.mint(iss="https://id.example.com/initech/", org="initech", aud="orders")
    assert decide(stranger, capsys) == ("unauthorized", "tenant_not_allowed")


# -- Okta and Keycloak (the oidc kind) ----------------------------------------------------------


def test_okta_scp_list_and_cid(dev_idp, configure: Configure, capsys):
    routes = {"GET /orders": {"scopes": ["orders.read"]}, "POST /orders": {"scopes": ["orders.write"]}}
    configure(settings("okta", dev_idp, IDP_ROUTES=json.dumps(routes), IDP_CLIENT_IDS="0oa1pnl2k8dev0client"))
    token = dev_idp.mint_preset("okta")
    assert decide(token, capsys, "GET /orders") == ("allow", "allowed")
    assert decide(token, capsys, "POST /orders") == ("deny", "insufficient_scope")
    assert (
        handler.handler(rest_token(token, f"{API}/GET/orders"), None)["context"]["client_id"] == "0oa1pnl2k8dev0client"
    )
    assert decide(dev_idp.mint_preset("okta", cid="0oaOTHER"), capsys, "GET /orders") == (
        "unauthorized",
        "wrong_client",
    )


def test_keycloak_nested_roles_and_azp(dev_idp, configure: Configure, capsys):
    routes = {
        "ANY /admin/{proxy+}": {"claims": {"/realm_access/roles": ["shop-admin"]}},
        "POST /orders/{id}/refund": {"claims": {"/resource_access/orders-api/roles": ["refund"]}},
        "GET /orders": {},
    }
    configure(
        settings(
            "keycloak",
            dev_idp,
            IDP_ROUTES=json.dumps(routes),
            IDP_CLIENT_IDS="orders-web",
            IDP_CONTEXT_CLAIMS="roles=/realm_access/roles,preferred_username",
        )
    )
    admin = dev_idp.mint_preset("keycloak")
    plain = dev_idp.mint_preset("keycloak", realm_access={"roles": ["offline_access"]}, resource_access={})
    assert decide(admin, capsys, "GET /admin/stats") == ("allow", "allowed")
    assert decide(admin, capsys, "POST /orders/7/refund") == ("allow", "allowed")
    assert decide(plain, capsys, "GET /admin/stats") == ("deny", "insufficient_scope")
    assert decide(plain, capsys, "POST /orders/7/refund") == ("deny", "insufficient_scope")
    assert decide(plain, capsys, "GET /orders") == ("allow", "allowed")
    context = handler.handler(rest_token(admin, f"{API}/GET/orders"), None)["context"]
    assert (context["roles"], context["preferred_username"], context["client_id"]) == (
        "offline_access shop-admin",
        "jdoe",
        "orders-web",
    )
    assert decide(dev_idp.mint_preset("keycloak", azp="evil-app"), capsys, "GET /orders") == (
        "unauthorized",
        "wrong_client",
    )


def test_two_client_claims_that_disagree_are_refused_under_an_allowlist(dev_idp, configure: Configure, capsys):
    configure(settings("keycloak", dev_idp, IDP_CLIENT_IDS="orders-web"))
    # a client_id claim (a user-attribute mapper, say) cannot stand in for Keycloak's azp
    posing = dev_idp.mint_preset("keycloak", azp="evil-app", client_id="orders-web")
    assert decide(posing, capsys, "GET /orders") == ("unauthorized", "wrong_client")
    agreeing = dev_idp.mint_preset("keycloak", client_id="orders-web")
    assert decide(agreeing, capsys, "GET /orders") == ("allow", "allowed")


def test_a_namespaced_claim_name_with_dots_and_slashes(dev_idp, configure: Configure, capsys):
    routes = {"GET /reports": {"claims": {"https://example.com/roles": ["analyst"]}}}
    configure(settings("okta", dev_idp, IDP_ROUTES=json.dumps(routes)))
    analyst = dev_idp.mint_preset("okta", **{"https://example.com/roles": ["analyst"]})
    other = dev_idp.mint_preset("okta", **{"https://example.com/roles": ["viewer"]})
    assert decide(analyst, capsys, "GET /reports") == ("allow", "allowed")
    assert decide(other, capsys, "GET /reports") == ("deny", "insufficient_scope")


# -- configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"IDP_PROVIDER": "cognito", "IDP_COGNITO_USER_POOL_ID": POOL}, "IDP_COGNITO_CLIENT_IDS"),
        ({"IDP_PROVIDER": "cognito", "IDP_COGNITO_USER_POOL_ID": "AbC123", "IDP_COGNITO_CLIENT_IDS": "x"}, "POOL_ID"),
        ({"IDP_PROVIDER": "entra", "IDP_ENTRA_TENANT_ID": "common", "IDP_AUDIENCE": ENTRA_APP}, "ALLOWED_TENANTS"),
        ({"IDP_PROVIDER": "entra", "IDP_ENTRA_TENANT_ID": "contoso.onmicrosoft.com", "IDP_AUDIENCE": "a"}, "GUID"),
        ({"IDP_PROVIDER": "entra", "IDP_ENTRA_TENANT_ID": TENANT}, "IDP_AUDIENCE"),
        (
            {
                "IDP_PROVIDER": "oidc",
                "IDP_ISSUER": "https://i.example/",
                "IDP_AUDIENCE": "a",
                "IDP_ENTRA_TENANT_ID": TENANT,
            },
            "IDP_ENTRA_TENANT_ID",
        ),
        (
            {"IDP_PROVIDER": "oidc", "IDP_ISSUER": "https://i.example/{tenantid}/", "IDP_AUDIENCE": "a"},
            "needs IDP_PROVIDER=jwks or oidc with IDP_JWKS_URL",
        ),
        (
            {
                "IDP_PROVIDER": "oidc",
                "IDP_ISSUER": "https://i.example/{tenantid}/",
                "IDP_AUDIENCE": "a",
                "IDP_JWKS_URL": "https://i.example/keys",
            },
            "IDP_ALLOWED_TENANTS",
        ),
        (
            {
                "IDP_PROVIDER": "cognito",
                "IDP_COGNITO_USER_POOL_ID": POOL,
                "IDP_COGNITO_CLIENT_IDS": "x",
                "IDP_ISSUER": "https://elsewhere.example/",
            },
            "IDP_ISSUER do not configure provider 'cognito'",
        ),
        (
            {
                "IDP_PROVIDER": "cognito",
                "IDP_COGNITO_USER_POOL_ID": POOL,
                "IDP_COGNITO_CLIENT_IDS": "x",
                "IDP_CLIENT_IDS": "y",
            },
            "IDP_COGNITO_CLIENT_IDS instead",
        ),
        (
            {
                "IDP_PROVIDER": "entra",
                "IDP_ENTRA_TENANT_ID": TENANT,
                "IDP_AUDIENCE": "a",
                "IDP_ENTRA_ALLOWED_TENANTS": OTHER_TENANT,
            },
            "accepts that tenant only",
        ),
        (
            {"IDP_PROVIDER": "oidc", "IDP_ISSUER": "https://i.example/", "IDP_AUDIENCE": '[""]'},
            "IDP_AUDIENCE: Value error, every entry must be a non-empty string",
        ),
        (
            {"IDP_PROVIDER": "cognito", "IDP_COGNITO_USER_POOL_ID": POOL, "IDP_COGNITO_CLIENT_IDS": '[" "]'},
            "IDP_COGNITO_CLIENT_IDS: Value error, every entry must be a non-empty string",
        ),
        (
            {**PRESETS["okta"].settings("https://k.example/"), "IDP_CONTEXT_CLAIMS": "client_id=/ext/client"},
            "context keys client_id are the authorizer's own or given twice",
        ),
        (
            {**PRESETS["okta"].settings("https://k.example/"), "IDP_CONTEXT_CLAIMS": "uid,uid=/ext/uid"},
            "context keys uid are the authorizer's own or given twice",
        ),
    ],
)
def test_preset_configuration_errors_fail_closed_and_name_the_variable(monkeypatch, capsys, env, named):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert handler.init() is None
    assert outcome_of(lambda: handler.handler(rest_token("x.y.z"), None)) == "unavailable"
    assert named in capsys.readouterr().out
    monkeypatch.undo()
    handler.init()
