"""``idp-authorizer invoke`` as a subprocess against the dev IdP: every shape, an event file, 401 and 500."""

import hashlib
import json
import os
import subprocess
import sys

import pytest
from conftest import oidc_env

ROUTES = {"GET /pets": ["pets:read"], "POST /pets": ["pets:write"]}
API = "arn:aws:execute-api:us-east-1:123456789012:abc123/test"


def run(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    return subprocess.run(
        [sys.executable, "-m", "idp_authorizer.tools.cli", "invoke", *args],
        env={**clean, **env},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def sections(out: str) -> tuple[str, dict | None, list[dict]]:
    """(verdict line, response JSON or None, log lines as JSON)."""
    head, _, rest = out.partition("\nresponse:\n")
    response_text, _, log_text = rest.partition("\nlog:\n")
    response = None if response_text.strip() == "(none: raised)" else json.loads(response_text)
    return head.removeprefix("API Gateway: "), response, [json.loads(line) for line in log_text.splitlines()]


def iam(effects: dict[str, str], issuer: str) -> dict:
    return {
        "principalId": "user-123",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Action": "execute-api:Invoke", "Effect": effect, "Resource": [f"{API}/{route}"]}
                for effect, route in effects.items()
            ],
        },
        "context": {
            "sub": "user-123",
            "iss": issuer,
            "scope": "pets:read",
            "provider": "oidc",
            "client_id": "demo-client",
        },
    }


@pytest.fixture
def env(dev_idp) -> dict[str, str]:
    return oidc_env(dev_idp, IDP_ROUTES=json.dumps(ROUTES))


@pytest.mark.parametrize("shape", ["rest-token", "rest-request", "http-v1", "http-v2"])
def test_each_shape_prints_the_response_and_the_decision_line(dev_idp, env, shape):
    token = dev_idp.mint(scope="pets:read")
    done = run(env, "--token", token, "--shape", shape, "--route", "GET /pets")
    print(done.stdout)
    assert done.returncode == 0, done.stderr
    assert token not in done.stdout
    verdict, response, logs = sections(done.stdout)
    if shape == "http-v2":
        assert verdict == "ALLOW (simple response)"
        assert response == {"isAuthorized": True, "context": iam({}, dev_idp.issuer)["context"]}
    else:
        assert verdict == "ALLOW (IAM policy for user-123: Allow abc123/test/GET/pets; Deny abc123/test/POST/pets)"
        assert response == iam({"Allow": "GET/pets", "Deny": "POST/pets"}, dev_idp.issuer)
    (decision,) = [line for line in logs if line["logger"] == "idp_authorizer.decision"]
    assert (decision["outcome"], decision["code"], decision["shape"]) == ("allow", "allowed", shape)
    assert decision["token_fp"] and hashlib.sha256(token.encode()).hexdigest().startswith(decision["token_fp"])


def test_missing_scope_is_a_403(dev_idp, env):
    done = run(
        env, "--token", f"Bearer {dev_idp.mint(scope='pets:read')}", "--shape", "http-v2", "--route", "POST /pets"
    )
    verdict, response, logs = sections(done.stdout)
    assert done.returncode == 1
    assert (verdict, response) == ("403 Forbidden (simple response)", {"isAuthorized": False})
    assert logs[-1]["code"] == "insufficient_scope"


def test_event_file_and_an_expired_token_give_401(dev_idp, env, tmp_path):
    event = {"type": "TOKEN", "authorizationToken": dev_idp.mint(ttl=-60), "methodArn": f"{API}/GET/pets"}
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    done = run(env, str(path))
    verdict, response, logs = sections(done.stdout)
    assert done.returncode == 1
    assert verdict == "401 Unauthorized (the handler raised Exception('Unauthorized'))" and response is None
    assert (logs[-1]["outcome"], logs[-1]["code"]) == ("invalid", "expired")


def test_broken_configuration_gives_500_and_its_log_line(dev_idp):
    done = run({"IDP_PROVIDER": "oidc"}, "-", stdin=json.dumps({"type": "TOKEN", "authorizationToken": "x"}))
    print(done.stdout)
    verdict, response, logs = sections(done.stdout)
    assert done.returncode == 1 and response is None
    assert verdict == "500 Internal Server Error (the handler raised AuthorizerUnavailable: configuration_error)"
    assert "provider 'oidc' needs issuer, audience" in logs[0]["message"]


def test_token_from_stdin_placed_where_idp_token_sources_says(dev_idp, env):
    env = {**env, "IDP_TOKEN_SOURCES": "query:access_token"}
    done = run(env, "--token", "-", "--shape", "rest-request", stdin=dev_idp.mint(scope="pets:read") + "\n")
    assert done.returncode == 0, done.stdout + done.stderr
    assert sections(done.stdout)[0].startswith("ALLOW")


def test_usage_errors(env):
    done = run(env, "--route", "pets")
    assert done.returncode == 2 and "--route must look like 'GET /pets'" in done.stderr


@pytest.mark.parametrize("shape", ["rest-request", "http-v1", "http-v2"])
def test_dpop_key_mints_a_proof_for_a_token_the_dev_idp_bound_to_it(dev_idp, env, shape, tmp_path):
    import urllib.parse
    import urllib.request

    key_file = str(tmp_path / "client.jwk")
    created = run(env, "--dpop-key", key_file, "--shape", shape)
    assert created.returncode == 2 and "jkt " in created.stdout
    jkt = created.stdout.split("jkt ")[1].split()[0]
    form = urllib.parse.urlencode({"dpop_jkt": jkt, "scope": "pets:read"}).encode()
    with urllib.request.urlopen(f"{dev_idp.issuer}/token", form, timeout=10) as reply:
        minted = json.load(reply)
    assert minted["token_type"] == "DPoP"
    done = run(env, "--token", minted["access_token"], "--dpop-key", key_file, "--shape", shape)
    assert done.returncode == 0, done.stdout + done.stderr
    assert sections(done.stdout)[2][-1]["code"] in ("allowed", "verified")
    bearer = run(env, "--token", minted["access_token"], "--shape", shape)
    assert bearer.returncode == 1 and sections(bearer.stdout)[2][-1]["code"] == "dpop_scheme_required"
