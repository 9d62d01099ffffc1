"""Which responses speak for the incoming ARN alone, as the decision (and so the decision log) says.

A REST TOKEN authorizer caches by token for every route: a policy for the incoming ARN alone is then
replayed on routes it says nothing about. The product returns one only as a fallback (the 8 KB budget,
or a route IAM cannot express exactly); ``Decision.policy_scope`` names it so operators can see it.
"""

import io
import json

from event_factory import http_v2, rest_token
from test_route_policies import PREFIX, principal

from idp_authorizer.core.events import parse_event
from idp_authorizer.core.outcome import Responder
from idp_authorizer.core.rules import RouteTable
from idp_authorizer.infra.log import DecisionLog


def answer(routes, who, verb, path):
    request = parse_event(rest_token("x", f"{PREFIX}/{verb}{path}"))
    return Responder(RouteTable.build(routes)).answer(request, who)


def test_a_route_aware_policy_speaks_for_the_stage():
    decision, response = answer(
        {"GET /pets": ["pets:read"], "POST /pets": ["pets:write"]}, principal("pets:read"), "GET", "/pets"
    )
    assert decision.outcome == "allow" and decision.policy_scope == "stage"
    assert len(response["policyDocument"]["Statement"]) == 2  # the Allow and the Deny of POST /pets


def test_the_size_budget_fallback_speaks_for_the_incoming_arn():
    routes = {f"GET /r{i}/{{id}}/items/{{item}}": [f"scope{i}"] for i in range(150)}
    who = principal(" ".join(f"scope{i}" for i in range(0, 150, 2)))
    decision, response = answer(routes, who, "GET", "/r2/1/items/3")
    assert decision.outcome == "allow" and decision.policy_scope == "incoming_arn"
    assert response["policyDocument"]["Statement"][0]["Resource"] == [f"{PREFIX}/GET/r2/1/items/3"]


def test_a_route_the_stage_policy_cannot_express_falls_back_to_the_incoming_arn():
    # The exclusion Deny that keeps {id} to one segment (GET/pets/*/*) also covers GET /pets/{id}/photos.
    routes = {"GET /pets/{id}": ["pets:read"], "GET /pets/{id}/photos": ["pets:read"]}
    decision, response = answer(routes, principal("pets:read"), "GET", "/pets/1/photos")
    assert decision.outcome == "allow" and decision.policy_scope == "incoming_arn"
    assert response["policyDocument"]["Statement"] == [
        {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": [f"{PREFIX}/GET/pets/1/photos"]}
    ]
    decision, _ = answer(routes, principal("pets:read"), "GET", "/pets/1")
    assert decision.policy_scope == "stage"


def test_a_simple_response_has_no_policy_scope():
    request = parse_event(http_v2("x", f"{PREFIX}/GET/pets"))
    decision, response = Responder(RouteTable.build({"GET /pets": ["pets:read"]})).answer(
        request, principal("pets:read")
    )
    assert response == {"isAuthorized": True, "context": response["context"]} and decision.policy_scope is None


def test_the_decision_log_line_carries_the_policy_scope():
    stream = io.StringIO()
    log = DecisionLog(stream=stream)
    for scope in ("incoming_arn", None):
        log.write(
            outcome="allow",
            code="allowed",
            principal=None,
            cache_hit=False,
            latency_us=1.0,
            cold_start=False,
            request=None,
            fingerprint=None,
            policy_scope=scope,
        )
    assert [json.loads(line)["policy_scope"] for line in stream.getvalue().splitlines()] == ["incoming_arn", None]
