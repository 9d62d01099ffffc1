"""Route rules and route-aware IAM policies, replayed the way API Gateway replays a cached result."""

from types import MappingProxyType

import pytest
from event_factory import rest_token
from iam_oracle import iam_allows

from idp_authorizer.core.events import parse_event
from idp_authorizer.core.outcome import Decision, Responder
from idp_authorizer.core.principal import Principal
from idp_authorizer.core.rules import RouteTable, parse_rule

PREFIX = "arn:aws-us-gov:execute-api:us-gov-west-1:123456789012:api9/prod"
ROUTES = {
    "GET /pets": ["pets:read"],
    "GET /pets/{id}": ["pets:read", "admin"],
    "POST /pets": {"all_scopes": ["pets:write"]},
    "DELETE /pets/{id}": {"all_scopes": ["pets:write", "admin"]},
    "GET /admin/{proxy+}": {"claims": {"role": ["admin"]}},
    "GET /health": {},
}
REQUESTS = [
    ("GET", "/pets"),
    ("GET", "/pets/1"),
    ("POST", "/pets"),
    ("DELETE", "/pets/1"),
    ("GET", "/admin/users/2"),
    ("GET", "/health"),
    ("PUT", "/pets/1"),
    ("GET", "/unlisted"),
]


def principal(scopes="", **claims):
    return Principal(
        subject="s1",
        issuer="https://issuer.example/",
        audiences=("api",),
        scopes=frozenset(scopes.split()),
        expires_at=2e9,
        provider="test",
        claims=MappingProxyType(claims),
    )


PRINCIPALS = {
    "nobody": principal(),
    "reader": principal("pets:read"),
    "writer": principal("pets:read pets:write"),
    "admin": principal("pets:write admin", role="admin"),
}


def permits(responder: Responder, request, who: Principal) -> bool:
    return responder.decide(request, who).outcome == "allow"


def token_event(verb: str, path: str) -> dict:
    return rest_token("x", f"{PREFIX}/{verb}{path}")


@pytest.mark.parametrize("allow_unlisted", [False, True])
@pytest.mark.parametrize("who", sorted(PRINCIPALS))
def test_cached_policy_replayed_on_every_route_gives_the_direct_decision(who, allow_unlisted):
    table = RouteTable.build(ROUTES, allow_unlisted=allow_unlisted)
    responder = Responder(table)
    subject = PRINCIPALS[who]
    for verb, path in REQUESTS:
        request = parse_event(token_event(verb, path))
        permitted = permits(responder, request, subject)
        policy = responder.render(request, Decision("allow" if permitted else "deny", "x", subject))
        for other_verb, other_path in REQUESTS:
            other = parse_event(token_event(other_verb, other_path))
            expected = permits(responder, other, subject)
            assert iam_allows(policy, f"{PREFIX}/{other_verb}{other_path}") is expected, (
                f"{who}: policy issued for {verb} {path} replayed on {other_verb} {other_path}"
            )


def test_expected_decisions():
    table = RouteTable.build(ROUTES)
    decide = {
        who: {f"{v} {p}": table.permits(pr, table.route(v, p[1:])) for v, p in REQUESTS}
        for who, pr in PRINCIPALS.items()
    }
    assert decide["reader"] == {
        "GET /pets": True,
        "GET /pets/1": True,
        "POST /pets": False,
        "DELETE /pets/1": False,
        "GET /admin/users/2": False,
        "GET /health": True,
        "PUT /pets/1": False,
        "GET /unlisted": False,
    }
    assert decide["admin"]["DELETE /pets/1"] and decide["admin"]["GET /admin/users/2"]
    assert not decide["writer"]["DELETE /pets/1"]
    assert decide["nobody"]["GET /health"] and not decide["nobody"]["GET /pets"]


def test_required_scopes_apply_to_every_route():
    table = RouteTable.build(ROUTES, ["tenant:acme"])
    assert not table.permits(PRINCIPALS["admin"], table.route("GET", "health"))
    assert table.permits(principal("tenant:acme"), table.route("GET", "health"))


def test_the_request_path_decides_not_the_route_template():
    """The same IDP_ROUTES decides the same way on every API type: the ARN's path, routed as API Gateway
    routes it (a literal segment beats {param}); the event's template is not consulted."""
    table = RouteTable.build({"GET /pets/{id}": ["a"], "GET /pets/mine": ["b"]})
    assert table.route("GET", "pets/mine").pattern == "GET /pets/mine"
    assert table.route("GET", "pets/7").pattern == "GET /pets/{id}"
    request = parse_event(
        {
            "type": "REQUEST",
            "methodArn": f"{PREFIX}/GET/pets/mine",
            "httpMethod": "GET",
            "resource": "/pets/{id}",
            "headers": {"Authorization": "Bearer x"},
        }
    )
    responder = Responder(table)
    assert permits(responder, request, principal("b")) and not permits(responder, request, principal("a"))


def test_whole_policy_literal_for_a_reader():
    table = RouteTable.build({"GET /pets": ["pets:read"], "POST /pets": ["pets:write"]})
    request = parse_event(token_event("GET", "/pets"))
    response = Responder(table).render(request, Decision("allow", "x", PRINCIPALS["reader"]))
    assert response == {
        "principalId": "s1",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": [f"{PREFIX}/GET/pets"]},
                {"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": [f"{PREFIX}/POST/pets"]},
            ],
        },
        "context": {"sub": "s1", "iss": "https://issuer.example/", "scope": "pets:read", "provider": "test"},
    }


@pytest.mark.parametrize("pattern", ["GET pets", "GET /a/{x+}/b", "/pets", "G3T /x", "GET /*/x"])
def test_bad_patterns_refused(pattern):
    with pytest.raises(ValueError):
        parse_rule(pattern, [])


def test_oversized_policy_falls_back_to_the_incoming_arn():
    routes = {f"GET /r{i}/{{id}}/items/{{item}}": [f"scope{i}"] for i in range(150)}
    table = RouteTable.build(routes)
    who = principal(" ".join(f"scope{i}" for i in range(0, 150, 2)))
    request = parse_event(token_event("GET", "/r2/1/items/3"))
    response = Responder(table).render(request, Decision("allow", "x", who))
    assert response["policyDocument"]["Statement"] == [
        {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": [f"{PREFIX}/GET/r2/1/items/3"]}
    ]


def test_a_cached_allow_everything_policy_does_not_open_connect_with_a_path():
    """Red-team finding: with ``Allow *`` and ``$connect`` denied, ``…/$connect/x`` was allowed although the
    router sent it to the ``$connect`` rule. Only the exact ``$connect`` ARN is that route now."""
    table = RouteTable.build({"$connect": ["s"]}, allow_unlisted=True)
    responder = Responder(table)
    who = principal()
    policy = responder.render(parse_event(token_event("GET", "/a")), Decision("allow", "x", who))
    for suffix in ("$connect", "$connect/"):
        assert not iam_allows(policy, f"{PREFIX}/{suffix}")
    assert iam_allows(policy, f"{PREFIX}/$connect/x")
    assert permits(responder, parse_event(token_event("$connect", "/x")), who)  # unlisted: allowed
    connect = parse_event({"type": "TOKEN", "authorizationToken": "Bearer x", "methodArn": f"{PREFIX}/$connect"})
    assert not permits(responder, connect, who)
