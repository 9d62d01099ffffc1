"""Issue 11 items 1, 2 and 4 as named regressions, through the real handler with dev-IdP tokens.

Each case was reproduced against the old code (a cached policy allowing what the rules deny, a method
taken from ``routeKey``, a boolean claim rule that never matched); each now holds.
"""

from __future__ import annotations

import json
from typing import Any

import event_factory as events
import pytest
from conftest import oidc_env
from iam_oracle import iam_allows

from idp_authorizer import handler

API = "arn:aws:execute-api:eu-west-1:123456789012:api7/prod"


def rest_token(token: str, verb: str, path: str) -> dict[str, Any]:
    return events.rest_token(token, f"{API}/{verb}{path}")


def rest_request(token: str, verb: str, path: str, resource: str) -> dict[str, Any]:
    return events.rest_request(token, f"{API}/{verb}{path}", resource=resource, method=verb, path=path)


def http_v2(token: str, verb: str, path: str, route_key: str) -> dict[str, Any]:
    http = {"method": verb, "path": path}
    return events.http_v2(token, f"{API}/{verb}{path}", route_key, rawPath=path, requestContext={"http": http})


def allowed(response: dict[str, Any], verb: str, path: str) -> bool:
    return iam_allows(response, f"{API}/{verb}{path}")


@pytest.fixture
def routes(dev_idp, configure):
    def apply(table: dict[str, Any], **env: str) -> None:
        configure(oidc_env(dev_idp, IDP_ROUTES=json.dumps(table), **env))

    return apply


# -- item 1: a cached policy is never wider than the rules ----------------------------------------------


def test_param_policy_replayed_under_a_proxy_route_that_needs_admin(dev_idp, routes):
    routes({"GET /public/{id}": {}, "ANY /{proxy+}": {"scopes": ["admin"]}})
    token = dev_idp.mint(scope="read")
    policy = handler.handler(rest_token(token, "GET", "/public/1"))
    assert allowed(policy, "GET", "/public/1")
    assert not allowed(policy, "GET", "/public/1/secret"), policy  # routed to /{proxy+}: admin only
    assert not allowed(handler.handler(rest_token(token, "GET", "/public/1/secret")), "GET", "/public/1/secret")


def test_any_route_policy_replayed_on_a_deeper_path_ending_the_same(dev_idp, routes):
    routes({"ANY /health": {}, "ANY /{proxy+}": ["admin"]})
    policy = handler.handler(rest_token(dev_idp.mint(scope="read"), "GET", "/health"))
    assert all(allowed(policy, verb, "/health") for verb in ("GET", "POST", "DELETE", "OPTIONS"))
    assert not allowed(policy, "DELETE", "/admin/db/health"), policy


def test_http_api_iam_policy_replayed_on_a_request_that_fell_to_default(dev_idp, routes):
    routes({"GET /pets/{id}": ["read"], "$default": ["admin"]}, IDP_RESPONSE="iam")
    token = dev_idp.mint(scope="read")
    policy = handler.handler(http_v2(token, "GET", "/pets/1", "GET /pets/{id}"))
    assert allowed(policy, "GET", "/pets/1")
    # A request API Gateway sends to $default carries its real verb and path in routeArn.
    assert not allowed(policy, "GET", "/pets/1/owner"), policy
    direct = handler.handler(http_v2(token, "GET", "/pets/1/owner", "$default"))
    assert not allowed(direct, "GET", "/pets/1/owner")


def test_a_path_with_a_wildcard_character_is_never_an_allow_of_itself(dev_idp, routes):
    # 150 routes push the route policy over the 8 KB budget: the response speaks for the incoming ARN alone.
    routes({f"GET /r{i}/{{id}}/items/{{item}}": ["read"] for i in range(150)})
    token = dev_idp.mint(scope="read")
    plain = handler.handler(rest_token(token, "GET", "/r2/1/items/3"))
    assert plain["policyDocument"]["Statement"][0] == {
        "Action": "execute-api:Invoke",
        "Effect": "Allow",
        "Resource": [f"{API}/GET/r2/1/items/3"],
    }
    for path in ("/r2/*/items/3", "/r2/1/items/?", "/r2/1/items/*"):
        policy = handler.handler(rest_token(token, "GET", path))
        resources = [r for s in policy["policyDocument"]["Statement"] if s["Effect"] == "Allow" for r in s["Resource"]]
        assert resources == [], policy  # an Allow for ".../items/*" would allow every item
        assert not allowed(policy, "GET", path) and not allowed(policy, "GET", "/r2/1/items/3")


def test_a_rule_literal_with_a_wildcard_character_is_never_emitted(dev_idp, routes):
    routes({"GET /files/*.pdf": {}, "GET /files/{name}": ["admin"]})
    token = dev_idp.mint(scope="read")
    for path in ("/files/*.pdf", "/files/report.pdf"):
        policy = handler.handler(rest_token(token, "GET", path))
        text = json.dumps(policy["policyDocument"])
        assert "*.pdf" not in text.replace('"Deny"', ""), policy
        assert not allowed(policy, "GET", "/files/secret.pdf"), policy


# -- item 2: the same IDP_ROUTES decides the same way on every API type ------------------------------


def test_an_any_route_key_does_not_decide_for_a_delete(dev_idp, routes):
    routes({"ANY /pets": ["read"], "DELETE /pets": ["admin"]})
    token = dev_idp.mint(scope="read")
    assert handler.handler(http_v2(token, "DELETE", "/pets", "ANY /pets")) == {"isAuthorized": False}
    assert handler.handler(http_v2(token, "GET", "/pets", "ANY /pets"))["isAuthorized"] is True
    for event in (rest_token(token, "DELETE", "/pets"), rest_request(token, "DELETE", "/pets", "/pets")):
        assert not allowed(handler.handler(event), "DELETE", "/pets")


def test_a_default_rule_does_not_hide_the_path_rules(dev_idp, routes):
    routes({"GET /pets/{id}": ["read"], "$default": ["admin"]})
    token = dev_idp.mint(scope="read")
    # An HTTP API whose only route is $default: the path rules still decide, $default only what they do not cover.
    assert handler.handler(http_v2(token, "GET", "/pets/1", "$default"))["isAuthorized"] is True
    assert handler.handler(http_v2(token, "GET", "/owners/1", "$default")) == {"isAuthorized": False}
    assert handler.handler(http_v2(dev_idp.mint(scope="admin"), "GET", "/owners/1", "$default"))["isAuthorized"]


def test_an_event_at_odds_with_its_arn_is_decided_by_both(dev_idp, routes):
    routes({"GET /pets": ["read"], "DELETE /pets": ["admin"]})
    token = dev_idp.mint(scope="read")
    odd = http_v2(token, "GET", "/pets", "GET /pets") | {"requestContext": {"http": {"method": "DELETE"}}}
    assert handler.handler(odd) == {"isAuthorized": False}


# -- item 4: claim rules compare JSON values -----------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "claim", "expected"),
    [
        (True, True, True),
        (True, "true", False),
        (True, False, False),
        (True, 1, False),
        (1, 1, True),
        (1, 1.0, True),
        (1, True, False),
        (1, "1", False),
        ("gold", "gold", True),
        ("gold", ["silver", "gold"], True),
        ([True, "yes"], "yes", True),
    ],
)
def test_claim_rules_match_json_values(dev_idp, routes, rule, claim, expected):
    routes({"GET /me": {"claims": {"c": rule}}})
    response = handler.handler(http_v2(dev_idp.mint(scope="read", c=claim), "GET", "/me", "GET /me"))
    assert response["isAuthorized"] is expected


def test_a_claim_rule_value_that_is_not_a_json_scalar_is_a_configuration_error():
    from idp_authorizer.core.rules import RouteTable

    with pytest.raises(ValueError, match="claim 'c'"):
        RouteTable.build({"GET /me": {"claims": {"c": {"nested": 1}}}})
