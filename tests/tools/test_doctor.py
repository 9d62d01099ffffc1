"""``idp-authorizer doctor`` against the dev IdP: a good configuration and broken ones, by report text."""

import json
import time

import pytest
from conftest import oidc_env
from introspection_server import BASIC, POST, IntrospectionServer

from idp_authorizer.tools import cli
from idp_authorizer.tools.doctor import diagnose
from idp_authorizer.tools.gateway_check import Gateway
from idp_authorizer.tools.report import render

HEADER = "$request.header.Authorization"


def doctor(monkeypatch, capsys, env: dict[str, str], *args: str) -> tuple[int, str]:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code = cli.main(["doctor", *args])
    return code, capsys.readouterr().out


def test_good_configuration(dev_idp, monkeypatch, capsys):
    token = dev_idp.mint(scope="pets:read")
    env = oidc_env(dev_idp, IDP_ALGORITHMS="RS256")
    code, out = doctor(
        monkeypatch,
        capsys,
        env,
        "--token",
        token,
        "--payload",
        "2.0",
        "--simple-responses",
        "--identity-source",
        HEADER,
    )
    print(out)
    assert code == 0
    assert out.splitlines()[-1] == "verdict: OK"
    assert "PROBLEM" not in out
    assert f"ok       [oidc] discovery: {dev_idp.issuer}/.well-known/openid-configuration: issuer matches" in out
    assert f"usable RS256: {dev_idp.keys['rsa'].kid}" in out
    assert "ok       [oidc] clock: " in out
    assert "valid (oidc): sub user-123, scopes pets:read, expires in" in out
    assert "ok       gateway: payload 2.0, simple responses on: the authorizer sends a simple response" in out
    assert token not in out and token.split(".")[2] not in out


def test_wrong_issuer_is_a_discovery_issuer_mismatch(dev_idp, monkeypatch, capsys):
    code, out = doctor(monkeypatch, capsys, oidc_env(dev_idp, IDP_ISSUER=dev_idp.issuer + "/"))
    print(out)
    assert code == 1
    assert (
        f"PROBLEM  [oidc] discovery: issuer mismatch: the document at {dev_idp.issuer}/.well-known/openid-configuration"
        f" says {dev_idp.issuer!r}, the authorizer expects {dev_idp.issuer + '/'!r}" in out
    )
    assert f"fix: set IDP_ISSUER to exactly {dev_idp.issuer!r} (trailing slash included)" in out
    assert out.splitlines()[-1] == "verdict: 1 problem(s)"


def test_algorithms_that_no_published_key_fits(dev_idp, monkeypatch, capsys):
    code, out = doctor(monkeypatch, capsys, oidc_env(dev_idp, IDP_ALGORITHMS="ES384"), "--payload", "1.0")
    print(out)
    assert code == 1
    assert (
        "PROBLEM  [oidc] key set: no published key can verify IDP_ALGORITHMS=ES384 (published: 1 EC, 1 OKP, 1 RSA;"
        in out
    )
    assert "fix: set IDP_ALGORITHMS to the algorithm your IdP signs access tokens with, e.g. ES256" in out
    assert "ok       gateway: payload 1.0: the authorizer answers with an IAM policy" in out
    assert out.splitlines()[-1] == "verdict: 1 problem(s)"


def test_http_url_to_a_remote_host_is_refused_before_any_fetch(dev_idp, monkeypatch, capsys):
    code, out = doctor(monkeypatch, capsys, oidc_env(dev_idp, IDP_ISSUER="http://idp.example.com"))
    print(out)
    assert code == 1
    assert "PROBLEM  settings: IDP_ISSUER must be an https:// URL (http:// only to loopback hosts)" in out
    assert "discovery" not in out
    assert out.splitlines()[-1] == "verdict: 1 problem(s)"


def test_missing_audience_and_bad_values_name_each_variable(monkeypatch, capsys):
    env = {"IDP_PROVIDER": "oidc", "IDP_ISSUER": "https://idp.example.com"}
    code, out = doctor(monkeypatch, capsys, env)
    assert code == 1
    assert "PROBLEM  settings: IDP_* settings: Value error, provider 'oidc' needs audience" in out
    assert "fix: set IDP_AUDIENCE" in out
    env = {"IDP_AUDIENCE": "api", "IDP_HTTP_TIMEOUT_SECONDS": "soon", "IDP_CACHE_MAX_ENTRIES": "0"}
    code, out = doctor(monkeypatch, capsys, env)
    print(out)
    assert "PROBLEM  settings: IDP_CACHE_MAX_ENTRIES: Input should be greater than or equal to 1" in out
    assert "PROBLEM  settings: IDP_HTTP_TIMEOUT_SECONDS: Input should be a valid number" in out
    assert out.splitlines()[-1] == "verdict: 2 problem(s)"


def test_simple_responses_with_payload_1(dev_idp, monkeypatch, capsys):
    code, out = doctor(monkeypatch, capsys, oidc_env(dev_idp, IDP_RESPONSE="simple"), "--payload", "1.0")
    print(out)
    assert code == 1
    assert "PROBLEM  gateway: IDP_RESPONSE=simple, but payload 1.0 events always get an IAM policy" in out
    assert "fix: use payload format 2.0 with simple responses, or set IDP_RESPONSE=auto (IAM for 1.0)" in out
    code, out = doctor(monkeypatch, capsys, {"IDP_RESPONSE": "auto"}, "--payload", "1.0", "--simple-responses")
    assert "PROBLEM  gateway: simple responses exist only for HTTP APIs with payload format 2.0" in out


def test_payload_2_response_mode_must_match_what_api_gateway_expects(dev_idp, monkeypatch, capsys):
    code, out = doctor(monkeypatch, capsys, oidc_env(dev_idp), "--payload", "2.0", "--no-simple-responses")
    assert code == 1
    assert (
        "PROBLEM  gateway: API Gateway expects an IAM policy (simple responses off) but IDP_RESPONSE=auto sends"
        ' {"isAuthorized": ...} for payload 2.0: every request fails with 500' in out
    )
    assert "fix: set IDP_RESPONSE=iam, or turn simple responses on (EnableSimpleResponses: true)" in out
    code, out = doctor(monkeypatch, capsys, {"IDP_RESPONSE": "iam"}, "--payload", "2.0", "--no-simple-responses")
    assert (
        code == 0 and "ok       gateway: payload 2.0, simple responses off: the authorizer sends an IAM policy" in out
    )


def test_identity_source_must_be_where_the_authorizer_reads_the_token(dev_idp, monkeypatch, capsys):
    env = oidc_env(dev_idp, IDP_ROUTES='{"GET /pets": ["pets:read"]}')
    args = ("--payload", "2.0", "--simple-responses", "--result-ttl", "300")
    code, out = doctor(monkeypatch, capsys, env, *args, "--identity-source", "$request.header.X-Api-Token")
    print(out)
    assert "PROBLEM  gateway: IDP_TOKEN_SOURCES=header:Authorization reads none of the identity sources" in out
    code, out = doctor(monkeypatch, capsys, {}, *args, "--identity-source", "$request.header.authorization")
    print(out)
    assert "PROBLEM  gateway: IDP_ROUTES has per-route rules but a cached isAuthorized answer is reused" in out
    assert "fix: add $context.routeKey to the identity source, or set the authorizer's result TTL to 0" in out
    code, out = doctor(monkeypatch, capsys, {}, *args, "--identity-source", f"{HEADER}, $context.routeKey")
    assert code == 0 and "ok       gateway: $context.routeKey is an identity source" in out


async def test_clock_skew_against_the_idp_date_header(dev_idp, monkeypatch):
    for name, value in oidc_env(dev_idp).items():
        monkeypatch.setenv(name, value)
    report = render(await diagnose(Gateway(), clock=lambda: time.time() + 120))
    print(report)
    assert "PROBLEM  [oidc] clock: this machine's clock is +120 s off the IdP's Date header" in report


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        (
            {"aud": "other-api"},
            "refused: wrong_audience (token audience is not accepted); the token says aud='other-api'",
        ),
        ({"ttl": -600}, "refused: expired (token has expired)"),
    ],
)
async def test_a_refused_token_is_explained_by_fingerprint_only(dev_idp, monkeypatch, claims, expected):
    for name, value in oidc_env(dev_idp).items():
        monkeypatch.setenv(name, value)
    token = dev_idp.mint(**claims)
    report = render(await diagnose(Gateway(), f"Bearer {token}"))
    print(report)
    assert expected in report and token not in report


def test_secrets_never_reach_the_report(monkeypatch, capsys):
    env = {"IDP_PROVIDER": "introspection", "IDP_CLIENT_ID": "app", "IDP_CLIENT_SECRET": "s3cr3t-value"}
    code, out = doctor(monkeypatch, capsys, env)
    assert code == 1 and "needs introspection_url" in out and "s3cr3t" not in out


@pytest.mark.parametrize("client", [BASIC, POST], ids=["client_secret_basic", "client_secret_post"])
def test_introspection_credentials_probe_and_token(client, monkeypatch, capsys):
    with IntrospectionServer() as srv:
        env = {
            "IDP_PROVIDER": "introspection",
            "IDP_ISSUER": srv.issuer,
            "IDP_CLIENT_ID": client.client_id,
            "IDP_CLIENT_SECRET": client.client_secret,
            "IDP_CLIENT_AUTH": client.method,
            "IDP_AUDIENCE": "urn:api",
            "IDP_ALLOW_LOOPBACK_HTTP": "true",
        }
        token = srv.issue(scope="pets:read")
        code, out = doctor(monkeypatch, capsys, env, f"--token={token}")
        print(out)
        assert code == 0, out
        assert (
            f"ok       [introspection] introspection: {srv.url} accepted the client credentials ({client.method})"
            in out
        )
        assert "scopes pets:read" in out and token not in out and client.client_secret not in out
        code, out = doctor(monkeypatch, capsys, {"IDP_CLIENT_SECRET": "wrong"}, f"--token={token}")
        print(out)
        assert code == 1
        assert f"PROBLEM  [introspection] introspection: {srv.url}: http_401 (the IdP answered 401)" in out
        assert "fix: check IDP_CLIENT_ID, IDP_CLIENT_SECRET and IDP_CLIENT_AUTH" in out


def test_result_caching_with_sender_constrained_tokens_is_a_problem(dev_idp, monkeypatch, capsys):
    env = oidc_env(dev_idp, IDP_REQUIRE_SENDER_CONSTRAINED="true")
    code, out = doctor(monkeypatch, capsys, env, "--payload", "2.0", "--simple-responses", "--result-ttl", "300")
    assert code == 1
    assert "PROBLEM  gateway: result caching (300 s) with sender-constrained tokens" in out
    assert "fix: set the authorizer's result TTL to 0" in out
    code, out = doctor(monkeypatch, capsys, {}, "--payload", "2.0", "--simple-responses", "--result-ttl", "0")
    assert "sender-constrained" not in out


def deadline_findings(monkeypatch, env: dict[str, str], gateway: Gateway) -> list[tuple[str, str]]:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    from idp_authorizer.aws.settings import load_settings
    from idp_authorizer.tools.doctor import check_deadline

    return [(f.status, f.message) for f in check_deadline(load_settings(), gateway)]


OIDC = {"IDP_PROVIDER": "oidc", "IDP_ISSUER": "https://idp.example.com/", "IDP_AUDIENCE": "api"}


def test_default_timeouts_answer_within_the_http_api_deadline(monkeypatch):
    # Discovery then the key set: 2 x (1 s connect + 3 s total) = 8 s < 10 s.
    [(status, message)] = deadline_findings(monkeypatch, OIDC, Gateway(payload="2.0"))
    assert status == "ok" and "up to 8 s on the IdP (2 call(s)" in message and "10 s an HTTP API" in message


def test_an_idp_timeout_past_the_http_api_deadline_is_a_problem(monkeypatch):
    env = {**OIDC, "IDP_HTTP_TIMEOUT_SECONDS": "5"}
    [(status, message)] = deadline_findings(monkeypatch, env, Gateway(payload="2.0"))
    assert status == "problem" and "up to 12 s" in message and "waits at most 10 s" in message
    # Without --payload (a REST API: 29 s) the same settings fit, with a note about HTTP APIs.
    [(status, message)] = deadline_findings(monkeypatch, env, Gateway())
    assert status == "note" and "fits a REST API (29 s), not an HTTP API (10 s)" in message
    # A configured key set URL saves the discovery call: 1 x (1 + 5) = 6 s.
    env["IDP_JWKS_URL"] = "https://idp.example.com/jwks"
    assert deadline_findings(monkeypatch, env, Gateway(payload="2.0"))[0][0] == "ok"


def test_introspected_routes_add_the_introspection_chain(monkeypatch):
    providers = [
        {"provider": "oidc", "issuer": "https://idp.example.com/", "audience": "api"},
        {"provider": "introspection", "issuer": "https://idp.example.com/", "client_id": "c", "client_secret": "s"},
    ]
    env = {"IDP_PROVIDERS": json.dumps(providers), "IDP_ROUTES": '{"GET /pets": {"introspect": true}}'}
    [(status, message)] = deadline_findings(monkeypatch, env, Gateway(payload="2.0"))
    assert status == "problem" and "up to 16 s on the IdP (4 call(s)" in message
