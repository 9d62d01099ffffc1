"""Sender-constrained tokens through the real handler: DPoP (RFC 9449) and certificate-bound tokens (RFC 8705).

REST REQUEST and HTTP API 2.0 events against the dev IdP on 127.0.0.1; each refusal is named by its
decision-log code. Replays are also caught across two instances sharing a real ``redis-server``.
"""

from __future__ import annotations

import base64
import datetime
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import oidc_env
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from event_factory import API, http_v2, rest_request, rest_token
from introspection_server import BASIC, IntrospectionServer
from outcomes import outcome_of, outcome_of_async

from idp_authorizer import handler
from idp_authorizer.aws.compose import build_authorizer
from idp_authorizer.aws.settings import load_settings
from idp_authorizer.jose.dpop import cert_thumbprint
from idp_authorizer.tools.dpop_client import DpopKey

HOST = "api.example.com"
URL = f"https://{HOST}/prod/pets"
KEY, OTHER = DpopKey("ES256"), DpopKey("ES256")


def rest(token: str, proofs: list[str] | None, *, scheme: str = "DPoP", **context: Any) -> dict[str, Any]:
    """A REST REQUEST event for GET /pets on stage prod, called at ``URL``."""
    headers = {"Authorization": f"{scheme} {token}", "Host": HOST}
    multi: dict[str, list[str]] = {"Authorization": [headers["Authorization"]], "Host": [HOST]}
    if proofs:
        headers["DPoP"] = proofs[-1]
        multi["DPoP"] = proofs
    return rest_request(
        None, headers=headers, multiValueHeaders=multi, requestContext={"path": "/prod/pets", **context}
    )


def v2(token: str, proofs: list[str] | None, *, scheme: str = "DPoP", **context: Any) -> dict[str, Any]:
    """An HTTP API 2.0 event for GET /pets on stage prod, called at ``URL`` (repeated headers comma-joined)."""
    headers = {"authorization": f"{scheme} {token}", "host": HOST}
    if proofs:
        headers["dpop"] = ",".join(proofs)
    return http_v2(None, headers=headers, rawPath="/prod/pets", requestContext={"domainName": HOST, **context})


SHAPES: dict[str, Callable[..., dict[str, Any]]] = {"rest-request": rest, "http-v2": v2}
REFUSED = {"rest-request": "unauthorized", "http-v2": "false"}


def decide(capsys: pytest.CaptureFixture[str], event: dict[str, Any]) -> tuple[str, str]:
    """(outcome, decision-log code) of one call of the real handler."""
    outcome = outcome_of(lambda: handler.handler(event, None))
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"idp_authorizer.decision"' in line]
    return outcome, str(lines[-1]["code"])


@pytest.fixture
def dpop_token(dev_idp, configure) -> Iterator[str]:
    configure(oidc_env(dev_idp))
    yield dev_idp.mint(cnf={"jkt": KEY.jkt})


@pytest.mark.parametrize("shape", SHAPES)
def test_a_valid_proof_allows_and_each_request_needs_its_own(shape, dpop_token, capsys):
    build = SHAPES[shape]
    assert decide(capsys, build(dpop_token, [KEY.proof("GET", URL, dpop_token)]))[0] == "allow"
    # The verdict is cached now, the proof check is not: a second request with a fresh proof allows,
    # one without a proof is refused.
    assert decide(capsys, build(dpop_token, [KEY.proof("GET", URL, dpop_token)]))[0] == "allow"
    assert decide(capsys, build(dpop_token, None)) == (REFUSED[shape], "dpop_proof_missing")


def test_the_policy_of_a_bound_token_speaks_for_the_incoming_arn_only(dpop_token, capsys):
    response = handler.handler(rest(dpop_token, [KEY.proof("GET", URL, dpop_token)]))
    assert response["policyDocument"]["Statement"] == [
        {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": [f"{API}/GET/pets"]}
    ]


def private_jwk_proof(token: str) -> str:
    return KEY.proof("GET", URL, token, header={"jwk": dict(KEY.key.as_dict(private=True))})


def forged(token: str, alg: str) -> str:
    """A proof whose header says ``alg`` instead of ES256 (its signature kept, so only the alg check refuses it)."""
    head, body, sig = KEY.proof("GET", URL, token).split(".")
    header = json.loads(base64.urlsafe_b64decode(head + "=="))
    changed = base64.urlsafe_b64encode(json.dumps({**header, "alg": alg}).encode()).rstrip(b"=").decode()
    return f"{changed}.{body}.{sig}"


CASES: dict[str, tuple[Callable[[str], list[str] | None], str]] = {
    "wrong htm": (lambda t: [KEY.proof("POST", URL, t)], "dpop_htm_mismatch"),
    "wrong htu": (lambda t: [KEY.proof("GET", f"https://{HOST}/prod/cats", t)], "dpop_htu_mismatch"),
    "stale iat": (lambda t: [KEY.proof("GET", URL, t, iat=time.time() - 120)], "dpop_proof_expired"),
    "wrong ath": (lambda t: [KEY.proof("GET", URL, t + "x")], "dpop_ath_mismatch"),
    "another key than cnf.jkt": (lambda t: [OTHER.proof("GET", URL, t)], "cnf_mismatch"),
    "private key in the header": (lambda t: [private_jwk_proof(t)], "dpop_private_key"),
    "alg HMAC": (lambda t: [forged(t, "HS256")], "dpop_alg_not_allowed"),
    "alg none": (lambda t: [forged(t, "none")], "dpop_alg_not_allowed"),
    "two DPoP headers": (lambda t: [KEY.proof("GET", URL, t), KEY.proof("GET", URL, t)], "dpop_multiple_proofs"),
}


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("case", CASES)
def test_each_bad_proof_is_refused_with_its_code(shape, case, dpop_token, capsys):
    proofs, code = CASES[case]
    assert decide(capsys, SHAPES[shape](dpop_token, proofs(dpop_token))) == (REFUSED[shape], code)


@pytest.mark.parametrize("shape", SHAPES)
def test_a_replayed_proof_is_refused(shape, dpop_token, capsys):
    event = SHAPES[shape](dpop_token, [KEY.proof("GET", URL, dpop_token)])
    assert decide(capsys, event)[0] == "allow"
    assert decide(capsys, event) == (REFUSED[shape], "dpop_replay")


@pytest.mark.parametrize("shape", SHAPES)
def test_a_dpop_bound_token_with_bearer_is_refused(shape, dpop_token, capsys):
    event = SHAPES[shape](dpop_token, [KEY.proof("GET", URL, dpop_token)], scheme="Bearer")
    assert decide(capsys, event) == (REFUSED[shape], "dpop_scheme_required")


def test_a_dpop_bound_token_on_a_token_event_is_refused(dpop_token, capsys):
    assert decide(capsys, rest_token(dpop_token)) == ("unauthorized", "dpop_token_event")
    event = rest_token(None, authorizationToken=f"DPoP {dpop_token}")
    assert decide(capsys, event) == ("unauthorized", "dpop_token_event")


@pytest.mark.parametrize("shape", SHAPES)
def test_the_dpop_scheme_with_an_unbound_token_is_refused(shape, dev_idp, dpop_token, capsys):
    token = dev_idp.mint()
    assert decide(capsys, SHAPES[shape](token, [KEY.proof("GET", URL, token)])) == (
        REFUSED[shape],
        "dpop_token_not_bound",
    )


def test_a_non_ascii_cnf_is_a_mismatch_not_a_crash(dev_idp, dpop_token, capsys):
    token = dev_idp.mint(cnf={"jkt": "\u00e9" * 43})
    assert decide(capsys, rest(token, [KEY.proof("GET", URL, token)])) == ("unauthorized", "cnf_mismatch")


def test_a_cnf_that_cannot_be_proven_is_refused(dev_idp, dpop_token, capsys):
    token = dev_idp.mint(cnf={"jwk": KEY.public_jwk})
    assert decide(capsys, rest(token, None, scheme="Bearer")) == ("unauthorized", "cnf_unsupported")


# -- requiring sender-constrained tokens -------------------------------------------------------


def test_require_sender_constrained_refuses_bearer_tokens(dev_idp, configure, capsys):
    configure(oidc_env(dev_idp, IDP_REQUIRE_SENDER_CONSTRAINED="true"))
    bearer = dev_idp.mint()
    assert decide(capsys, rest(bearer, None, scheme="Bearer")) == ("unauthorized", "sender_constraint_required")
    bound = dev_idp.mint(cnf={"jkt": KEY.jkt})
    assert decide(capsys, rest(bound, [KEY.proof("GET", URL, bound)]))[0] == "allow"


def test_a_sender_constrained_route_denies_bearer_tokens_and_their_policies_deny_it(dev_idp, configure, capsys):
    routes = {"GET /pets": {"sender_constrained": True}, "GET /health": {}}
    configure(oidc_env(dev_idp, IDP_ROUTES=json.dumps(routes)))
    bearer = dev_idp.mint()
    # (the policy also allows GET /health, so the coarse outcome reads "allow"; the code and the Deny say it)
    assert decide(capsys, rest(bearer, None, scheme="Bearer"))[1] == "sender_constrained_route"
    health = rest_request(bearer, f"{API}/GET/health", resource="/health")
    response = handler.handler(health)
    assert {s["Effect"]: s["Resource"] for s in response["policyDocument"]["Statement"]} == {
        "Allow": [f"{API}/GET/health"],
        "Deny": [f"{API}/GET/pets"],
    }
    bound = dev_idp.mint(cnf={"jkt": KEY.jkt})
    assert decide(capsys, rest(bound, [KEY.proof("GET", URL, bound)]))[0] == "allow"


# -- certificate-bound tokens (RFC 8705) -------------------------------------------------------


def certificate(name: str) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


CLIENT, STRANGER = certificate("client"), certificate("stranger")


def rest_mtls(token: str, pem: str | None) -> dict[str, Any]:
    return rest(token, None, scheme="Bearer", identity={"clientCert": {"clientCertPem": pem}} if pem else {})


def v2_mtls(token: str, pem: str | None) -> dict[str, Any]:
    return v2(token, None, scheme="Bearer", authentication={"clientCert": {"clientCertPem": pem}} if pem else {})


@pytest.mark.parametrize(("build", "refused"), [(rest_mtls, "unauthorized"), (v2_mtls, "false")])
def test_a_certificate_bound_token_needs_its_certificate(build, refused, dev_idp, configure, capsys):
    configure(oidc_env(dev_idp))
    token = dev_idp.mint(cnf={"x5t#S256": cert_thumbprint(CLIENT)})
    assert decide(capsys, build(token, CLIENT))[0] == "allow"
    assert decide(capsys, build(token, STRANGER)) == (refused, "cnf_mismatch")
    assert decide(capsys, build(token, None)) == (refused, "client_cert_missing")


# -- introspection answers with cnf -----------------------------------------------------------


@pytest.fixture
def introspection() -> Iterator[IntrospectionServer]:
    with IntrospectionServer() as server:
        yield server


def introspection_env(server: IntrospectionServer, **extra: str) -> dict[str, str]:
    return {
        "IDP_PROVIDER": "introspection",
        "IDP_INTROSPECTION_URL": server.url,
        "IDP_CLIENT_ID": BASIC.client_id,
        "IDP_CLIENT_SECRET": BASIC.client_secret,
        "IDP_ALLOW_LOOPBACK_HTTP": "true",
        **extra,
    }


@pytest.mark.parametrize("shape", SHAPES)
def test_an_introspection_answer_with_cnf_is_enforced_the_same_way(shape, introspection, configure, capsys):
    configure(introspection_env(introspection))
    token = introspection.issue(cnf={"jkt": KEY.jkt}, token_type="DPoP")
    build = SHAPES[shape]
    assert decide(capsys, build(token, [KEY.proof("GET", URL, token)]))[0] == "allow"
    assert decide(capsys, build(token, [OTHER.proof("GET", URL, token)])) == (REFUSED[shape], "cnf_mismatch")
    assert decide(capsys, build(token, None, scheme="Bearer")) == (REFUSED[shape], "dpop_scheme_required")
    certified = introspection.issue(cnf={"x5t#S256": cert_thumbprint(CLIENT)})
    assert decide(capsys, build(certified, None, scheme="Bearer")) == (REFUSED[shape], "client_cert_missing")


# -- replays across instances ----------------------------------------------------------------


async def test_a_replay_at_another_instance_sharing_redis_is_refused(dev_idp, redis_server, monkeypatch):
    for name, value in oidc_env(dev_idp, IDP_CACHE_URL=redis_server.url, IDP_LOG_LEVEL="WARNING").items():
        monkeypatch.setenv(name, value)
    first, second = build_authorizer(load_settings()), build_authorizer(load_settings())
    token = dev_idp.mint(cnf={"jkt": KEY.jkt})
    event = v2(token, [KEY.proof("GET", URL, token)])
    assert await outcome_of_async(first.authorize(event)) == "allow"
    assert await outcome_of_async(second.authorize(event)) == "false"
    fresh = v2(token, [KEY.proof("GET", URL, token)])
    assert await outcome_of_async(second.authorize(fresh)) == "allow"
    assert await outcome_of_async(first.authorize(fresh)) == "false"
    for authorizer in (first, second):
        for provider in authorizer.router.providers:
            await provider.close()
