"""``authnCtx`` as the responder builds it: whole, reduced, or left out, and always within API Gateway's limit."""

from __future__ import annotations

import base64
import json
from types import MappingProxyType

import pytest

from idp_authorizer.core.claims import claim_path
from idp_authorizer.core.events import parse_event
from idp_authorizer.core.outcome import Responder
from idp_authorizer.core.principal import Principal
from idp_authorizer.core.responses import RESULT_BUDGET, authn_context
from idp_authorizer.core.rules import RouteTable

ARN = "arn:aws:execute-api:us-east-1:123456789012:demo123/prod/GET/pets"


def principal(**claims: object) -> Principal:
    base = {"sub": "u1", "iss": "https://issuer.example/", "exp": 2_000_000_000, **claims}
    return Principal("u1", "https://issuer.example/", (), frozenset(), 2e9, "oidc", claims=MappingProxyType(base))


def test_standard_padded_base64_of_compact_json():
    value = authn_context({"sub": "a?>", "n": 1})
    assert value == base64.b64encode(b'{"sub":"a?>","n":1}').decode()
    assert value is not None and len(value) % 4 == 0


def test_reduced_keeps_the_named_claims_and_sub_iss_exp():
    claims = {"sub": "u", "iss": "i", "exp": 1, "tenant": "t", "big": "x"}
    assert json.loads(base64.b64decode(authn_context(claims, ["tenant"]) or "")) == {
        "sub": "u",
        "iss": "i",
        "exp": 1,
        "tenant": "t",
    }


@pytest.mark.parametrize("event", [{"type": "TOKEN"}, {"version": "2.0", "type": "REQUEST", "routeArn": ARN}])
@pytest.mark.parametrize(
    ("claims", "cut"),
    [({"tenant": "t"}, None), ({"tenant": "t", "blob": "x" * 9000}, "reduced"), ({"tenant": "y" * 9000}, "omitted")],
)
def test_whole_then_reduced_then_omitted(event, claims, cut):
    responder = Responder(RouteTable.build({}), context_claims=(claim_path("tenant"),), inject_context=True)
    request = parse_event({"authorizationToken": "t", "methodArn": ARN, "headers": {"authorization": "t"}, **event})
    decision, response = responder.answer(request, principal(**claims))
    assert decision.outcome == "allow" and decision.authn_ctx == cut
    assert len(json.dumps(response, separators=(",", ":"))) <= RESULT_BUDGET
    assert ("authnCtx" in response["context"]) == (cut != "omitted")
