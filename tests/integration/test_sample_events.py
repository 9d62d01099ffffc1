"""Every API Gateway authorizer event in tests/events/ (from Powertools for AWS Lambda, see its
PROVENANCE.md) through the real handler, with a real token from the dev IdP substituted where
API Gateway would put it. Each must parse and yield the right response shape, compared whole.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import oidc_env
from outcomes import answer

from idp_authorizer.tools.devidp import DevIdp

EVENTS = Path(__file__).resolve().parents[1] / "events"

TOKEN_EVENT = "apiGatewayAuthorizerTokenEvent.json"
REQUEST_EVENT = "apiGatewayAuthorizerRequestEvent.json"  # HTTP API payload 1.0
V2_EVENT = "apiGatewayAuthorizerV2Event.json"
AUTHORIZER_EVENTS = (TOKEN_EVENT, REQUEST_EVENT, V2_EVENT)
# Proxy events: what the backend integration receives, never what an authorizer receives.
PROXY_EVENTS = ("apiGatewayProxyV2LambdaAuthorizerEvent.json", "apiGatewayProxyEvent.json")

# The stage prefix of each authorizer event's methodArn / routeArn (partition, region, account, api, stage).
# The sample's stage is "*" (a console test invocation). IAM has no escape for "*", so the policy writes
# the stage as "?": one character, which matches "*" and cannot span the "/" into the path.
TOKEN_PREFIX = "arn:aws:execute-api:us-west-2:123456789012:ymy8tbxw7b/?"
REQUEST_PREFIX = "arn:aws:execute-api:us-east-1:123456789012:abcdef123/test"
V2_PREFIX = "arn:aws:execute-api:us-east-1:123456789012:abcdef123/test"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return data


def with_token(name: str, token: str) -> dict[str, Any]:
    """The sample event as API Gateway would send it with ``Authorization: Bearer <token>`` as identity source."""
    event = copy.deepcopy(load(name))
    value = f"Bearer {token}"
    if name == TOKEN_EVENT:
        event["authorizationToken"] = value
    elif name == REQUEST_EVENT:
        # Payload 1.0 repeats the joined identity-source values in identitySource and authorizationToken.
        event["headers"]["Authorization"] = value
        event["identitySource"] = value
        event["authorizationToken"] = value
    elif name == V2_EVENT:
        event["headers"]["Authorization"] = value  # the sample spells it with a capital A; names are case-insensitive
        event["identitySource"] = [value]
    else:
        event["headers"]["Authorization"] = value
    return event


def context(idp: DevIdp) -> dict[str, Any]:
    return {"sub": "user-123", "iss": idp.issuer, "scope": "read", "provider": "oidc", "client_id": "demo-client"}


def policy(idp: DevIdp, allow: list[str], deny: list[str] | None = None) -> dict[str, Any]:
    statements = [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": allow}] if allow else []
    if deny:
        statements.append({"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": deny})
    return {
        "principalId": "user-123",
        "policyDocument": {"Version": "2012-10-17", "Statement": statements},
        "context": context(idp),
    }


def test_every_authorizer_sample_is_covered() -> None:
    on_disk = {p.name for p in EVENTS.glob("*.json")}
    assert on_disk == set(AUTHORIZER_EVENTS) | set(PROXY_EVENTS)


@pytest.mark.parametrize("mode", ["auto", "iam", "simple"])
def test_token_event(dev_idp: DevIdp, configure: Any, mode: str) -> None:
    configure(oidc_env(dev_idp, IDP_RESPONSE=mode))
    # TOKEN is a REST API event: always an IAM policy, whatever IDP_RESPONSE says.
    assert answer(with_token(TOKEN_EVENT, dev_idp.mint())) == policy(dev_idp, [f"{TOKEN_PREFIX}/*"])


@pytest.mark.parametrize("mode", ["auto", "iam", "simple"])
def test_request_event_payload_1_0(dev_idp: DevIdp, configure: Any, mode: str) -> None:
    configure(oidc_env(dev_idp, IDP_RESPONSE=mode))
    # Payload 1.0 is answered with an IAM policy, whatever IDP_RESPONSE says.
    assert answer(with_token(REQUEST_EVENT, dev_idp.mint())) == policy(dev_idp, [f"{REQUEST_PREFIX}/*"])


def test_v2_event_simple_response(dev_idp: DevIdp, configure: Any) -> None:
    for mode in ("auto", "simple"):
        configure(oidc_env(dev_idp, IDP_RESPONSE=mode))
        assert answer(with_token(V2_EVENT, dev_idp.mint())) == {"isAuthorized": True, "context": context(dev_idp)}


def test_v2_event_iam_response(dev_idp: DevIdp, configure: Any) -> None:
    configure(oidc_env(dev_idp, IDP_RESPONSE="iam"))
    assert answer(with_token(V2_EVENT, dev_idp.mint())) == policy(dev_idp, [f"{V2_PREFIX}/*"])


def test_request_event_with_route_rules(dev_idp: DevIdp, configure: Any) -> None:
    routes = {"GET /request": ["read"], "DELETE /request": ["admin"]}
    configure(oidc_env(dev_idp, IDP_ROUTES=json.dumps(routes)))
    assert answer(with_token(REQUEST_EVENT, dev_idp.mint(scope="read"))) == policy(
        dev_idp, [f"{REQUEST_PREFIX}/GET/request"], [f"{REQUEST_PREFIX}/DELETE/request"]
    )
    # A token without the scope the incoming route needs: explicit Deny (403), never a 401.
    refused = answer(with_token(REQUEST_EVENT, dev_idp.mint(scope="other")))
    assert refused == {
        "principalId": "user-123",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Action": "execute-api:Invoke",
                    "Effect": "Deny",
                    "Resource": [f"{REQUEST_PREFIX}/GET/request", f"{REQUEST_PREFIX}/DELETE/request"],
                }
            ],
        },
        "context": {**context(dev_idp), "scope": "other"},
    }


@pytest.mark.parametrize("mode", ["auto", "iam"])
def test_samples_as_published_are_refused(dev_idp: DevIdp, configure: Any, mode: str) -> None:
    """The placeholder credentials in the samples ("allow", "user1,123", "value") are not tokens."""
    configure(oidc_env(dev_idp, IDP_RESPONSE=mode))
    assert answer(load(TOKEN_EVENT)) == "401"
    assert answer(load(REQUEST_EVENT)) == "401"  # no Authorization header; authorizationToken alone is not read
    assert answer(load(V2_EVENT)) == ("401" if mode == "iam" else {"isAuthorized": False})


@pytest.mark.parametrize("name", PROXY_EVENTS)
def test_proxy_events_are_not_authorizer_events(dev_idp: DevIdp, configure: Any, name: str) -> None:
    """A proxy event (even one carrying a valid token) has no methodArn/routeArn: fail closed with 401."""
    configure(oidc_env(dev_idp))
    assert answer(with_token(name, dev_idp.mint())) == "401"
