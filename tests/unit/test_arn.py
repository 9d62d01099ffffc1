"""execute-api ARN parsing: real, emulator (serverless-offline, SAM local) and refused ARNs."""

from __future__ import annotations

import pytest
from conftest import oidc_env
from event_factory import rest_token

from idp_authorizer import handler
from idp_authorizer.core.arn import ExecuteApiArn, parse_arn

# What serverless-offline 13 puts in methodArn / routeArn (see tests/integration/test_serverless_offline.py).
OFFLINE = "arn:aws:execute-api:us-east-1:random-account-id:random-api-id/dev/GET/x"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/pets/1",
            ("aws", "us-east-1", "123456789012", "abc123", "prod", "GET", "pets/1"),
        ),
        (OFFLINE, ("aws", "us-east-1", "random-account-id", "random-api-id", "dev", "GET", "x")),
        (
            "arn:aws:execute-api:us-east-1:random-account-id:random-api-id/dev/POST/",
            ("aws", "us-east-1", "random-account-id", "random-api-id", "dev", "POST", ""),
        ),
        (
            "arn:aws-cn:execute-api:cn-north-1:123456789012:a_b.c-1/$default/ANY/x/y",
            ("aws-cn", "cn-north-1", "123456789012", "a_b.c-1", "$default", "ANY", "x/y"),
        ),
        (
            "arn:aws-us-gov:execute-api:us-gov-west-1:1:abc/v1/$connect",
            ("aws-us-gov", "us-gov-west-1", "1", "abc", "v1", "$connect", ""),
        ),
        # The API Gateway console's test invocation sends stage `*` (Powertools sample TOKEN event).
        (
            "arn:aws:execute-api:us-west-2:123456789012:ymy8tbxw7b/*/GET/",
            ("aws", "us-west-2", "123456789012", "ymy8tbxw7b", "*", "GET", ""),
        ),
    ],
)
def test_parses(value, expected):
    arn = parse_arn(value)
    assert arn == ExecuteApiArn(*expected, value)


def test_serverless_offline_placeholders_accepted():
    """Issue 11 item 9: the old parser wanted a 12-digit account and an alphanumeric API id."""
    arn = parse_arn(OFFLINE)
    assert arn is not None
    assert arn.api_prefix == "arn:aws:execute-api:us-east-1:random-account-id:random-api-id/dev"
    assert arn.resource("GET", "pets") == f"{arn.api_prefix}/GET/pets"


@pytest.mark.parametrize(
    "value",
    [
        # IAM wildcards in account or API id: the policy prefix would match other accounts / APIs.
        "arn:aws:execute-api:us-east-1:*:abc123/prod/GET/pets",
        "arn:aws:execute-api:us-east-1:12345678901?:abc123/prod/GET/pets",
        "arn:aws:execute-api:us-east-1:123456789012:*/prod/GET/pets",
        "arn:aws:execute-api:us-east-1:123456789012:abc*/prod/GET/pets",
        "arn:aws:execute-api:us-east-1:123456789012:ab?123/prod/GET/pets",
        "arn:aws:execute-api:us-east-1:random-*:random-api-id/dev/GET/x",
        # empty, or carrying a separator
        "arn:aws:execute-api:us-east-1::abc123/prod/GET/pets",
        "arn:aws:execute-api:us-east-1:123456789012:/prod/GET/pets",
        "arn:aws:execute-api:us-east-1:123456789012:abc:123/prod/GET/pets",
        "arn:aws:execute-api:us-east-1:12/34:abc123/prod/GET/pets",
        "arn:aws:execute-api:us-east-1:random account:random-api-id/dev/GET/x",
        "arn:aws:execute-api:us-east-1:random-account-id:random\tapi/dev/GET/x",
        # not an execute-api ARN, or not a whole one
        "arn:aws:lambda:us-east-1:123456789012:function:f",
        "arn:aws:s3:::bucket/key",
        "arn:aws:execute-api:us-east-1:random-account-id:random-api-id",
        "arn:aws:execute-api:us-east-1:random-account-id:random-api-id/dev",
        "arn:aws:execute-api:us-east-1:random-account-id",
        "arn:azure:execute-api:us-east-1:random-account-id:random-api-id/dev/GET/x",
        "ARN:aws:execute-api:us-east-1:random-account-id:random-api-id/dev/GET/x",
        OFFLINE + "\n",
        OFFLINE.replace("random-account-id", "random-account-id\x00"),
        OFFLINE.replace("random-api-id", "random-api-ïd"),
        "",
        "*",
    ],
)
def test_refuses(value):
    assert parse_arn(value) is None


@pytest.mark.parametrize("value", [None, 1, ["x"], {"arn": OFFLINE}, OFFLINE + "/" + "x" * 3000])
def test_refuses_non_strings_and_huge(value):
    assert parse_arn(value) is None


def test_handler_allows_behind_serverless_offline(dev_idp, configure):
    """The whole handler on an event with serverless-offline's placeholder ARN: an allow scoped to it."""
    configure(oidc_env(dev_idp))
    event = rest_token(dev_idp.mint(scope="read"), OFFLINE)
    response = handler.handler(event, None)
    prefix = "arn:aws:execute-api:us-east-1:random-account-id:random-api-id/dev"
    assert response == {
        "principalId": "user-123",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": [f"{prefix}/*"]}],
        },
        "context": {
            "sub": "user-123",
            "iss": dev_idp.issuer,
            "scope": "read",
            "provider": "oidc",
            "client_id": "demo-client",
        },
    }


def test_handler_refuses_wildcard_api_id(dev_idp, configure):
    configure(oidc_env(dev_idp))
    event = {
        "type": "TOKEN",
        "authorizationToken": f"Bearer {dev_idp.mint(scope='read')}",
        "methodArn": "arn:aws:execute-api:us-east-1:random-account-id:*/dev/GET/x",
    }
    with pytest.raises(Exception) as refused:
        handler.handler(event, None)
    assert type(refused.value) is Exception and refused.value.args == ("Unauthorized",)
