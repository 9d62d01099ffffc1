"""``doctor`` for each preset: the derived issuer and key URL, the key set read through the
``IDP_JWKS_URL`` override (the dev IdP), and the preset's usual mistakes, by report text.

The presets' real discovery documents (cognito-idp..., login.microsoftonline.com) cannot be reached
from here; for a preset whose key URL is derived that probe is a cross-check only, reported as a note.
"""

from __future__ import annotations

import pytest

from idp_authorizer.tools import cli
from idp_authorizer.tools.presets import COGNITO_CLIENT, OTHER_TENANT, POOL, PRESETS, TENANT

ISSUERS = {
    "cognito": f"https://cognito-idp.eu-west-1.amazonaws.com/{POOL}",
    "entra": "https://login.microsoftonline.com/{tenantid}/v2.0",
}


def doctor(monkeypatch, capsys, env: dict[str, str], *args: str) -> tuple[int, str]:
    for name, value in {"IDP_ALLOW_LOOPBACK_HTTP": "true", "IDP_HTTP_TIMEOUT_SECONDS": "2", **env}.items():
        monkeypatch.setenv(name, value)
    code = cli.main(["doctor", *args])
    out = capsys.readouterr().out
    print(out)
    return code, out


@pytest.mark.parametrize("preset", ["cognito", "entra"])
def test_good_preset_configuration(dev_idp, monkeypatch, capsys, preset):
    token = dev_idp.mint_preset(preset)
    code, out = doctor(monkeypatch, capsys, PRESETS[preset].settings(dev_idp.jwks_url), "--token", token)
    assert code == 0 and out.splitlines()[-1] == "verdict: OK"
    assert (
        f"ok       [{preset}] {preset}: issuer {ISSUERS[preset]}, keys {dev_idp.jwks_url} (IDP_JWKS_URL override)"
        in out
    )
    assert f"note     [{preset}] discovery: " in out and "the issuer is not cross-checked" in out
    assert f"usable RS256: {dev_idp.keys['rsa'].kid}" in out
    assert f"valid ({preset}): sub " in out and token not in out


def test_entra_notes_the_token_version_the_app_registration_must_ask_for(dev_idp, monkeypatch, capsys):
    _, out = doctor(monkeypatch, capsys, PRESETS["entra"].settings(dev_idp.jwks_url))
    assert f"note     [entra] entra: v2 access tokens of tenant(s) {TENANT}; the app registration's " in out
    assert "accessTokenAcceptedVersion (api.requestedAccessTokenVersion) must be 2" in out


@pytest.mark.parametrize(
    ("preset", "claims", "extra", "said", "fix"),
    [
        (
            "cognito",
            {"token_use": "id", "aud": COGNITO_CLIENT, "client_id": None},
            {},
            "refused: wrong_token_use (token_use is not 'access'); the token says token_use='id'",
            "fix: this is a Cognito ID token: send the access token (or accept ID tokens: IDP_COGNITO_TOKEN_USE=id)",
        ),
        (
            "cognito",
            {"client_id": "other-client"},
            {},
            "refused: wrong_client (token client is not an accepted client); the token says client_id='other-client'",
            "fix: add the token's app client id to IDP_COGNITO_CLIENT_IDS",
        ),
        (
            "entra",
            {"iss": f"https://sts.windows.net/{TENANT}/", "ver": "1.0"},
            {},
            f"refused: wrong_issuer (token issuer is not the expected one); the token says iss='https://sts.windows.net/{TENANT}/'",
            "fix: this is a v1 token: set IDP_ENTRA_TOKEN_VERSION=1, or set accessTokenAcceptedVersion to 2",
        ),
        (
            "entra",
            {"azp": None, "scp": None},
            {},
            "refused: wrong_client (token names no client)",
            "fix: this looks like an ID token (no azp): send the access token",
        ),
        (
            "entra",
            {"aud": "api://orders"},
            {"IDP_ENTRA_TOKEN_VERSION": "1"},
            "refused: wrong_issuer",
            "fix: this is a v2 token: set IDP_ENTRA_TOKEN_VERSION=2",
        ),
        (
            "entra",
            {"iss": f"https://login.microsoftonline.com/{OTHER_TENANT}/v2.0", "tid": OTHER_TENANT},
            {},
            f"refused: tenant_not_allowed (token tenant is not an allowed tenant); the token says iss='https://login.microsoftonline.com/{OTHER_TENANT}/v2.0', tid='{OTHER_TENANT}'",
            "fix: the token's tenant is not accepted: add its tid to IDP_ENTRA_ALLOWED_TENANTS",
        ),
    ],
)
def test_broken_preset_configuration_explains_the_token(dev_idp, monkeypatch, capsys, preset, claims, extra, said, fix):
    token = dev_idp.mint_preset(preset, **claims)
    env = {**PRESETS[preset].settings(dev_idp.jwks_url), **extra}
    code, out = doctor(monkeypatch, capsys, env, "--token", token)
    assert code == 1 and said in out and fix in out and token not in out


@pytest.mark.parametrize(
    ("env", "said", "fix"),
    [
        (
            {"IDP_PROVIDER": "entra", "IDP_ENTRA_TENANT_ID": "common", "IDP_AUDIENCE": "api://orders"},
            "PROBLEM  settings: IDP_ENTRA_TENANT_ID=common accepts any tenant's tokens",
            "fix: set IDP_ENTRA_ALLOWED_TENANTS",
        ),
        (
            {"IDP_PROVIDER": "entra", "IDP_ENTRA_TENANT_ID": "contoso.onmicrosoft.com", "IDP_AUDIENCE": "a"},
            "IDP_ENTRA_TENANT_ID must be a tenant GUID or organizations/common (tokens name the tenant by its GUID",
            "fix: correct the variable named above",
        ),
        (
            {"IDP_PROVIDER": "cognito", "IDP_COGNITO_USER_POOL_ID": POOL},
            "provider 'cognito' needs cognito_client_ids (IDP_COGNITO_CLIENT_IDS)",
            "fix: set IDP_COGNITO_CLIENT_IDS",
        ),
        (
            {"IDP_PROVIDER": "cognito", "IDP_COGNITO_USER_POOL_ID": "AbC123", "IDP_COGNITO_CLIENT_IDS": "app"},
            "IDP_COGNITO_USER_POOL_ID must be a user pool id such as eu-west-1_AbC123",
            "fix: correct the variable named above",
        ),
    ],
)
def test_broken_preset_settings_name_the_variable(monkeypatch, capsys, env, said, fix):
    code, out = doctor(monkeypatch, capsys, env)
    assert code == 1 and said in out and fix in out


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_demo_with_a_preset_runs_its_token_shape_through_the_handler(preset):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    run = subprocess.run(
        [sys.executable, "-m", "idp_authorizer.tools.cli", "demo", "--preset", preset],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=root,
        env={"PATH": "/usr/bin:/bin"},
        check=True,
    )
    cases = run.stdout.split("\n\n")
    assert f"{preset}-shaped tokens" in cases[0]
    valid, expired, missing, absent = cases[1:5]
    assert absent.count("401 Unauthorized") == 2, absent
    assert valid.count("ALLOW ") == 3, valid
    assert expired.count("401 Unauthorized") == 2 and "DENY 403" in expired, expired
    assert missing.count("DENY 403") == 3, missing


async def test_the_dev_idp_token_endpoint_mints_a_preset_shape(dev_idp):
    import aiohttp

    from idp_authorizer.jose.jwt import decompose

    async with aiohttp.ClientSession() as session:
        async with session.post(f"{dev_idp.issuer}/token", data={"preset": "cognito"}) as response:
            token = (await response.json())["access_token"]
        async with session.post(f"{dev_idp.issuer}/token", data={"preset": "saml"}) as response:
            assert response.status == 400
    parts = decompose(token)
    assert "typ" not in parts.unverified_header and "aud" not in parts.unverified_claims
    assert parts.unverified_claims["token_use"] == "access" and parts.unverified_claims["client_id"] == COGNITO_CLIENT
