"""Several providers at once (``IDP_PROVIDERS``): two JWT issuers (two dev IdPs) and an introspection endpoint.

A JWT goes to the provider of its (unverified) ``iss``, which verifies it with its own keys; anything
that is not a JWS goes to introspection; routes marked ``"introspect": true`` make a JWT pass
introspection too, whenever the response would reach such a route.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from event_factory import ARN, http_v2, rest_token
from introspection_server import BASIC, IntrospectionServer
from outcomes import outcome_of

from idp_authorizer import handler
from idp_authorizer.tools.devidp import DevIdp

API = ARN.rsplit("/", 2)[0]


@pytest.fixture
def server() -> Iterator[IntrospectionServer]:
    with IntrospectionServer() as srv:
        yield srv


def jwt_provider(name: str, idp: DevIdp) -> dict[str, Any]:
    return {
        "name": name,
        "provider": "oidc",
        "issuer": idp.issuer,
        "audience": [idp.audience],
        "algorithms": ["RS256", "ES256"],
    }


def introspection_provider(srv: IntrospectionServer, name: str = "opaque") -> dict[str, Any]:
    return {
        "name": name,
        "provider": "introspection",
        "introspection_url": srv.url,
        "client_id": BASIC.client_id,
        "client_secret": BASIC.client_secret,
    }


def env(*providers: dict[str, Any], **extra: str) -> dict[str, str]:
    return {"IDP_PROVIDERS": json.dumps(list(providers)), "IDP_ALLOW_LOOPBACK_HTTP": "true", **extra}


def v2_event(token: str, route: str = "GET /pets") -> dict[str, Any]:
    method, path = route.split(" ")
    return http_v2(token, f"{API}/{method}{path.replace('{id}', '1')}", route)


def rest_event(token: str, route: str = "GET /pets") -> dict[str, Any]:
    method, path = route.split(" ")
    return rest_token(token, f"{API}/{method}{path.replace('{id}', '1')}")


def provider_of(event: dict[str, Any]) -> str:
    response = handler.handler(event, None)
    assert response.get("isAuthorized") is True, response
    return str(response["context"]["provider"])


def test_two_issuers_and_opaque_tokens_each_go_to_their_provider(dev_idp, fresh_idp, server, configure):
    configure(env(jwt_provider("first", dev_idp), jwt_provider("second", fresh_idp), introspection_provider(server)))
    opaque = server.issue(sub="machine-1")
    assert provider_of(v2_event(dev_idp.mint())) == "first"
    assert provider_of(v2_event(fresh_idp.mint(alg="ES256"))) == "second"
    assert provider_of(v2_event(opaque)) == "opaque"
    assert server.calls == 1  # JWTs never reach the introspection endpoint
    assert fresh_idp.hits["/.well-known/jwks.json"] == 1


def test_an_issuer_is_bound_to_its_own_keys(dev_idp, fresh_idp, server, configure):
    configure(env(jwt_provider("first", dev_idp), jwt_provider("second", fresh_idp), introspection_provider(server)))
    borrowed = dev_idp.mint(iss=fresh_idp.issuer, aud=fresh_idp.audience)  # second's iss, first's key
    unknown = dev_idp.mint(iss="https://stranger.example/")
    for token in (borrowed, unknown, fresh_idp.mint()[:-8] + "AAAAAAAA", "garbage-not-a-token"):
        assert outcome_of(lambda t=token: handler.handler(rest_token(t), None)) == "unauthorized"
    assert server.calls == 1  # only the non-JWS token was introspected (active: false)


def test_jwt_providers_only_refuse_opaque_tokens_without_asking_anyone(dev_idp, fresh_idp, configure):
    configure(env(jwt_provider("first", dev_idp), jwt_provider("second", fresh_idp)))
    assert outcome_of(lambda: handler.handler(rest_token("opaque-token-0123456789"), None)) == "unauthorized"


def test_two_introspection_providers_are_refused(server, configure, monkeypatch):
    for name, value in env(introspection_provider(server, "a"), introspection_provider(server, "b")).items():
        monkeypatch.setenv(name, value)
    assert handler.init() is None


# -- routes marked introspect ------------------------------------------------------------------

ROUTES = {"GET /pets": ["read"], "DELETE /pets/{id}": {"scopes": ["admin"], "introspect": True}}


def admin_jwt(idp: DevIdp, srv: IntrospectionServer) -> str:
    """A JWT the introspection endpoint also knows (an IdP that issues JWTs and introspects them)."""
    token = idp.mint(scope="read admin")
    srv.register(token, sub="user-123", client_id="demo-client", iss=idp.issuer, exp=int(time.time()) + 300)
    return token


def test_iam_policy_reaching_an_introspect_route_needs_the_idp_to_confirm(dev_idp, server, configure):
    window = 1.0
    configure(
        env(
            jwt_provider("jwt", dev_idp),
            introspection_provider(server),
            IDP_ROUTES=json.dumps(ROUTES),
            IDP_INTROSPECTION_CACHE_SECONDS=str(window),
        )
    )
    reader = dev_idp.mint(scope="read")
    response = handler.handler(rest_event(reader), None)
    assert response["policyDocument"]["Statement"][0] == {
        "Action": "execute-api:Invoke",
        "Effect": "Allow",
        "Resource": [f"{API}/GET/pets"],
    }
    assert server.calls == 0  # its policy reaches no introspect route: the JWT alone decides

    admin = admin_jwt(dev_idp, server)
    response = handler.handler(rest_event(admin), None)
    # {id} is "?*" (one or more characters), kept to one segment by a Deny of DELETE/pets/*/*.
    assert set(response["policyDocument"]["Statement"][0]["Resource"]) == {f"{API}/GET/pets", f"{API}/DELETE/pets/?*"}
    confirmed_at = time.monotonic()
    assert server.calls == 1
    server.revoke(admin)
    assert handler.handler(rest_event(admin), None) == response  # within the window: the cached answer
    assert time.monotonic() - confirmed_at < window and server.calls == 1
    time.sleep(max(0.0, confirmed_at + window - time.monotonic()) + 0.1)
    # The policy would allow DELETE, and API Gateway may replay it there: the revoked token is refused.
    assert outcome_of(lambda: handler.handler(rest_event(admin), None)) == "unauthorized"
    assert outcome_of(lambda: handler.handler(rest_event(dev_idp.mint(scope="admin")), None)) == "unauthorized"


def test_simple_response_asks_only_on_the_introspect_route(dev_idp, server, configure):
    configure(
        env(
            jwt_provider("jwt", dev_idp),
            introspection_provider(server),
            IDP_ROUTES=json.dumps(ROUTES),
            IDP_INTROSPECTION_CACHE_SECONDS="0",
        )
    )
    admin = admin_jwt(dev_idp, server)
    assert handler.handler(v2_event(admin, "GET /pets"), None)["isAuthorized"] is True
    assert server.calls == 0
    assert handler.handler(v2_event(admin, "DELETE /pets/{id}"), None)["isAuthorized"] is True
    assert server.calls == 1
    server.revoke(admin)
    assert handler.handler(v2_event(admin, "DELETE /pets/{id}"), None) == {"isAuthorized": False}
    assert handler.handler(v2_event(admin, "GET /pets"), None)["isAuthorized"] is True  # the JWT verdict stands
    assert server.calls == 2


async def test_introspect_route_with_async_entry_and_outage(dev_idp, server, configure):
    from fault_server import status

    from idp_authorizer.core.errors import AuthorizerUnavailable

    configure(env(jwt_provider("jwt", dev_idp), introspection_provider(server), IDP_ROUTES=json.dumps(ROUTES)))
    admin = admin_jwt(dev_idp, server)
    server.fault = status(503)
    with pytest.raises(AuthorizerUnavailable):
        await handler.authorize(v2_event(admin, "DELETE /pets/{id}"))
    server.fault = None
    assert (await handler.authorize(v2_event(admin, "DELETE /pets/{id}")))["isAuthorized"] is True


def test_opaque_tokens_are_not_introspected_twice_on_introspect_routes(dev_idp, server, configure):
    configure(env(jwt_provider("jwt", dev_idp), introspection_provider(server), IDP_ROUTES=json.dumps(ROUTES)))
    opaque = server.issue(scope="admin", sub="ops")
    assert handler.handler(v2_event(opaque, "DELETE /pets/{id}"), None)["isAuthorized"] is True
    assert server.calls == 1


def test_introspect_route_without_an_introspection_provider_is_a_configuration_error(dev_idp, monkeypatch, capsys):
    for name, value in env(jwt_provider("jwt", dev_idp), IDP_ROUTES=json.dumps(ROUTES)).items():
        monkeypatch.setenv(name, value)
    assert handler.init() is None
    assert "IDP_ROUTES" in capsys.readouterr().out
    with pytest.raises(Exception, match="configuration_error"):
        handler.handler(rest_token(dev_idp.mint(scope="admin")), None)


def test_introspect_flag_must_be_a_boolean(dev_idp, server, monkeypatch):
    routes = {"DELETE /pets/{id}": {"scopes": ["admin"], "introspect": "yes"}}
    for name, value in env(
        jwt_provider("jwt", dev_idp), introspection_provider(server), IDP_ROUTES=json.dumps(routes)
    ).items():
        monkeypatch.setenv(name, value)
    assert handler.init() is None
