"""Event parsing and token extraction (pure; no servers)."""

import pytest
from event_factory import http_v2 as _http_v2
from event_factory import rest_request as _rest_request
from event_factory import rest_token as _rest_token

from idp_authorizer.core.errors import InvalidToken, Reason
from idp_authorizer.core.events import SenderEvidence, TokenSource, check_token_syntax, parse_event, sender_evidence

ARN = "arn:aws-cn:execute-api:cn-north-1:123456789012:api1/prod/GET/pets/7"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"
OTHER = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ5In0.c2ln"
ALL_SOURCES = (
    TokenSource("header", "Authorization"),
    TokenSource("query", "access_token"),
    TokenSource("cookie", "at"),
)


def rest_request(**extra):
    return {"type": "REQUEST", "methodArn": ARN, "httpMethod": "GET", "resource": "/pets/{id}", **extra}


def http_v2(**extra):
    return {"version": "2.0", "type": "REQUEST", "routeArn": ARN, "routeKey": "GET /pets/{id}", **extra}


@pytest.mark.parametrize(
    ("event", "shape", "method", "template"),
    [
        ({"type": "TOKEN", "authorizationToken": TOKEN, "methodArn": ARN}, "rest-token", "GET", None),
        (rest_request(), "rest-request", "GET", "/pets/{id}"),
        ({**rest_request(), "version": "1.0"}, "http-v1", "GET", "/pets/{id}"),
        (http_v2(), "http-v2", "GET", "/pets/{id}"),
        (http_v2(routeKey="$default"), "http-v2", "GET", "$default"),
        (
            {
                "type": "REQUEST",
                "methodArn": "arn:aws:execute-api:us-east-1:123456789012:ws1/prod/$connect",
                "requestContext": {"eventType": "CONNECT", "routeKey": "$connect"},
            },
            "websocket",
            "$connect",
            "$connect",
        ),
    ],
)
def test_shapes_and_routes(event, shape, method, template):
    request = parse_event(event)
    assert (request.shape, request.method, request.template) == (shape, method, template)
    assert request.arn is not None and request.arn.value == event.get("methodArn", event.get("routeArn"))


def test_partition_is_kept():
    request = parse_event(rest_request())
    assert request.arn is not None
    assert request.arn.api_prefix == "arn:aws-cn:execute-api:cn-north-1:123456789012:api1/prod"
    assert request.path == "/pets/7"


@pytest.mark.parametrize(
    "value", [f"Bearer {TOKEN}", f"bearer {TOKEN}", f"BEARER   {TOKEN}", TOKEN, f"  Bearer {TOKEN}  "]
)
def test_bearer_scheme_case_insensitive_and_optional(value):
    assert parse_event({"type": "TOKEN", "authorizationToken": value, "methodArn": ARN}).token == TOKEN


@pytest.mark.parametrize("value", [f"Basic {TOKEN}", f"Bearer {TOKEN} extra", "Bearer", "", "Bearer a\x00b", "a,b"])
def test_malformed_authorization_values_refused(value):
    with pytest.raises(InvalidToken):
        token = parse_event({"type": "TOKEN", "authorizationToken": value, "methodArn": ARN}).token
        check_token_syntax(token)


@pytest.mark.parametrize("name", ["Authorization", "authorization", "AUTHORIZATION", "aUtHoRiZaTiOn"])
def test_header_names_case_insensitive(name):
    assert parse_event(rest_request(headers={name: f"Bearer {TOKEN}"})).token == TOKEN


def test_multi_value_headers_same_token_accepted():
    event = rest_request(
        headers={"Authorization": f"Bearer {TOKEN}"},
        multiValueHeaders={"authorization": [f"Bearer {TOKEN}", f"bearer {TOKEN}"]},
    )
    assert parse_event(event).token == TOKEN


def test_multi_value_headers_different_tokens_refused():
    event = rest_request(multiValueHeaders={"Authorization": [f"Bearer {TOKEN}", f"Bearer {OTHER}"]})
    with pytest.raises(InvalidToken) as caught:
        parse_event(event)
    assert caught.value.code == "multiple_tokens"


def test_token_sources_in_order_and_conflicts():
    query_only = http_v2(queryStringParameters={"access_token": TOKEN})
    assert parse_event(query_only, ALL_SOURCES).token == TOKEN
    assert parse_event(query_only).token is None  # query not configured
    cookie_v2 = http_v2(cookies=["x=1", f"at={TOKEN}"])
    assert parse_event(cookie_v2, ALL_SOURCES).token == TOKEN
    cookie_v1 = rest_request(headers={"Cookie": f"x=1; at={TOKEN}"})
    assert parse_event(cookie_v1, ALL_SOURCES).token == TOKEN
    both = http_v2(headers={"authorization": f"Bearer {TOKEN}"}, queryStringParameters={"access_token": OTHER})
    with pytest.raises(InvalidToken):
        parse_event(both, ALL_SOURCES)
    same = http_v2(headers={"authorization": f"Bearer {TOKEN}"}, queryStringParameters={"access_token": TOKEN})
    assert parse_event(same, ALL_SOURCES).token == TOKEN


def test_token_source_spec_parsing():
    assert TokenSource.parse("cookie:session") == TokenSource("cookie", "session")
    for bad in ("header", "body:x", "query:"):
        with pytest.raises(ValueError):
            TokenSource.parse(bad)


@pytest.mark.parametrize(
    "event",
    [
        None,
        [],
        "TOKEN",
        {},
        {"type": "TOKEN", "version": "3.0"},
        {"version": "2.0"},
        {"type": "REQUEST", "version": "9"},
        {"type": "REQUEST", "methodArn": ARN, "headers": "not-a-map"},
    ],
)
def test_unrecognised_or_broken_events_are_invalid_token(event):
    with pytest.raises(InvalidToken):
        parse_event(event)


# -- sender-constrained tokens: scheme, DPoP proofs, htu, client certificate -------------------


@pytest.mark.parametrize(
    ("value", "scheme"), [("DPoP abc", "dpop"), ("dpop abc", "dpop"), ("Bearer abc", "bearer"), ("abc", None)]
)
def test_the_scheme_is_kept(value: str, scheme: str | None):
    event = _rest_request(None, headers={"Authorization": value})
    request = parse_event(event)
    assert (request.token, request.scheme) == ("abc", scheme)
    assert parse_event(_rest_token(None, authorizationToken=value)).scheme == scheme


def test_one_token_under_two_schemes_is_refused():
    event = _rest_request(None, multiValueHeaders={"Authorization": ["DPoP abc", "Bearer abc"]})
    with pytest.raises(InvalidToken) as caught:
        parse_event(event)
    assert caught.value.code == Reason.MULTIPLE_TOKENS


def test_rest_request_htu_is_host_and_context_path():
    event = _rest_request(
        "t",
        headers={"Authorization": "DPoP t", "Host": "api.example.com", "DPoP": "p1"},
        multiValueHeaders={"DPoP": ["p1"]},
        requestContext={"path": "/prod/pets"},
    )
    assert sender_evidence(event, parse_event(event)) == SenderEvidence(
        ("p1",), "GET", "https://api.example.com/prod/pets", None
    )


def test_http_v2_htu_is_host_and_raw_path_and_commas_split_proofs():
    event = _http_v2(
        "t",
        headers={"authorization": "DPoP t", "dpop": "p1,p2"},
        rawPath="/pets",
        requestContext={"domainName": "api.example.com", "authentication": {"clientCert": {"clientCertPem": "PEM"}}},
    )
    evidence = sender_evidence(event, parse_event(event))
    assert evidence == SenderEvidence(("p1", "p2"), "GET", "https://api.example.com/pets", "PEM")


def test_the_domain_api_gateway_names_wins_over_the_host_header():
    event = _http_v2(
        "t", headers={"host": "evil.example.com"}, rawPath="/pets", requestContext={"domainName": "api.example.com"}
    )
    assert sender_evidence(event, parse_event(event)).htu == "https://api.example.com/pets"


def test_no_host_means_no_htu():
    event = _http_v2("t", rawPath="/pets")
    assert sender_evidence(event, parse_event(event)).htu is None
