"""``IDP_INJECT_CONTEXT``: ``authnCtx`` through the real handler, for a JWT and an opaque token, in every shape.

The backend reads ``requestContext.authorizer.authnCtx``: the padded standard base64 (RFC 4648 section 4)
of the compact JSON of the verified claims, or of the introspection answer. Never the token. When the whole
does not fit API Gateway's limit, the claims of ``IDP_CONTEXT_CLAIMS`` plus ``sub``/``iss``/``exp`` are
injected and the decision log says ``"authn_ctx":"reduced"``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import oidc_env
from event_factory import http_v1, http_v2, rest_request, rest_token, websocket
from introspection_server import IntrospectionServer

from idp_authorizer import handler

SHAPES = {"rest-token": rest_token, "rest-request": rest_request, "http-v1": http_v1, "websocket": websocket}
"""The shapes answered with an IAM policy whatever IDP_RESPONSE says; http-v2 is below, in both forms."""
CASES = [(shape, "auto") for shape in SHAPES] + [("http-v2", "auto"), ("http-v2", "iam")]


@pytest.fixture
def server() -> Iterator[IntrospectionServer]:
    with IntrospectionServer() as srv:
        yield srv


def event(shape: str, token: str) -> dict[str, Any]:
    return http_v2(token) if shape == "http-v2" else SHAPES[shape](token)


def decoded(value: object) -> dict[str, Any]:
    """The JSON inside ``authnCtx``, after checking it is standard padded base64 (no URL-safe alphabet)."""
    assert isinstance(value, str) and len(value) % 4 == 0, value
    try:
        raw = base64.b64decode(value, validate=True)
    except binascii.Error as exc:  # pragma: no cover - the assertion message is the point
        raise AssertionError(f"not standard base64: {value!r}") from exc
    assert b" " not in raw, "not compact JSON"
    result: dict[str, Any] = json.loads(raw)
    return result


def jwt_claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    result: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return result


def context_of(response: dict[str, Any]) -> dict[str, Any]:
    context: dict[str, Any] = response["context"]
    if "isAuthorized" in response:
        assert response["isAuthorized"] is True
    else:
        assert response["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    return context


@pytest.mark.parametrize(("shape", "mode"), CASES)
def test_a_jwts_claims_reach_the_backend_in_every_shape(dev_idp, configure, shape, mode):
    configure(oidc_env(dev_idp, IDP_INJECT_CONTEXT="true", IDP_RESPONSE=mode))
    token = dev_idp.mint(scope="read", tenant="acme", groups=["a", "b"])
    response = handler.handler(event(shape, token), None)
    assert decoded(context_of(response)["authnCtx"]) == jwt_claims(token)
    assert token not in json.dumps(response)
    # The cached verdict answers the same, claims and all.
    assert handler.handler(event(shape, token), None) == response


def test_a_jwts_claims_reach_a_simple_response(dev_idp, configure):
    configure(oidc_env(dev_idp, IDP_INJECT_CONTEXT="true"))
    token = dev_idp.mint(scope="read", tenant="acme")
    response = handler.handler(http_v2(token), None)
    assert set(response) == {"isAuthorized", "context"}
    assert decoded(context_of(response)["authnCtx"]) == jwt_claims(token)


@pytest.mark.parametrize(("shape", "mode"), [*CASES, ("http-v2", "simple")])
def test_an_opaque_tokens_introspection_answer_reaches_the_backend(server, configure, shape, mode):
    configure(server.env(IDP_INJECT_CONTEXT="true", IDP_RESPONSE=mode))
    token = server.issue(scope="read", sub="alice", department="research")
    response = handler.handler(event(shape, token), None)
    assert decoded(context_of(response)["authnCtx"]) == server.answer(token)
    assert decoded(context_of(response)["authnCtx"])["active"] is True
    assert token not in json.dumps(response)


def test_off_by_default(dev_idp, configure):
    configure(oidc_env(dev_idp))
    assert "authnCtx" not in handler.handler(rest_token(dev_idp.mint()), None)["context"]


@pytest.mark.parametrize(("shape", "mode"), [("rest-token", "auto"), ("http-v2", "auto"), ("http-v2", "iam")])
def test_claims_too_large_for_the_response_are_reduced_and_the_log_says_so(dev_idp, configure, capsys, shape, mode):
    configure(
        oidc_env(
            dev_idp,
            IDP_INJECT_CONTEXT="true",
            IDP_RESPONSE=mode,
            IDP_CONTEXT_CLAIMS="tenant",
            IDP_MAX_TOKEN_BYTES="16384",
        )
    )
    token = dev_idp.mint(scope="read", tenant="acme", profile="x" * 8000)
    capsys.readouterr()
    response = handler.handler(event(shape, token), None)
    claims = jwt_claims(token)
    assert decoded(context_of(response)["authnCtx"]) == {
        "sub": claims["sub"],
        "iss": claims["iss"],
        "exp": claims["exp"],
        "tenant": "acme",
    }
    assert len(json.dumps(response)) < 8 * 1024
    handler.handler(event(shape, token), None)  # answered from the cached verdict: said again
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"idp_authorizer.decision"' in line]
    assert [(line["outcome"], line.get("authn_ctx")) for line in lines] == [("allow", "reduced")] * 2


def test_claims_that_fit_are_not_reported_as_cut(dev_idp, configure, capsys):
    configure(oidc_env(dev_idp, IDP_INJECT_CONTEXT="true"))
    capsys.readouterr()
    handler.handler(rest_token(dev_idp.mint()), None)
    line = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert line["outcome"] == "allow" and "authn_ctx" not in line
