"""Conformance: the real handler against tokens minted by a real, certified OpenID Provider.

The OP is panva's ``oidc-provider`` (tests/oidc_provider, driven by tests/support/oidc_op.py). Every test
builds the handler from ``IDP_*`` variables as a cold start does (the ``configure`` fixture) and
calls ``idp_authorizer.handler.handler`` with API Gateway events carrying the OP's tokens.

Run alone with ``pytest -m conformance``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from event_factory import ARN, http_v2, rest_token
from oidc_op import (
    CLIENT_BASIC,
    CLIENT_POST,
    CLIENT_READ_ONLY,
    JWT_RESOURCES,
    RESOURCE_OPAQUE,
    RESOURCE_RS256,
    RESOURCE_SHORT,
    OidcOp,
    decode_jwt_unverified,
    generate_signing_jwks,
    ttl_resource,
)
from outcomes import answer

from idp_authorizer import handler
from idp_authorizer.aws.runtime import Authorizer
from idp_authorizer.tools.devidp import DevIdp

pytestmark = pytest.mark.conformance

API = ARN.rsplit("/", 2)[0]  # arn:aws:execute-api:us-east-1:123456789012:abc123/prod
ALGORITHMS = "RS256,ES256,PS256"

Configure = Callable[[dict[str, str]], Authorizer]


def oidc_env(op: OidcOp, audience: str = RESOURCE_RS256, **extra: str) -> dict[str, str]:
    """An OIDC-discovery provider for the OP's JWT access tokens (RFC 9068: ``typ`` must be at+jwt)."""
    return {
        "IDP_PROVIDER": "oidc",
        "IDP_ISSUER": op.issuer,
        "IDP_AUDIENCE": audience,
        "IDP_ALGORITHMS": ALGORITHMS,
        "IDP_REQUIRED_TYP": "at+jwt",
        "IDP_ALLOW_LOOPBACK_HTTP": "true",
        **extra,
    }


def introspection_env(op: OidcOp, client: Any = CLIENT_BASIC, **extra: str) -> dict[str, str]:
    """An RFC 7662 introspection provider at the OP, endpoint found by discovery."""
    return {
        "IDP_PROVIDER": "introspection",
        "IDP_ISSUER": op.issuer,
        "IDP_CLIENT_ID": client.client_id,
        "IDP_CLIENT_SECRET": client.client_secret,
        "IDP_CLIENT_AUTH": client.auth_method,
        "IDP_ALLOW_LOOPBACK_HTTP": "true",
        **extra,
    }


def allow_policy(principal: str, context: dict[str, Any], resources: list[str] | None = None) -> dict[str, Any]:
    return {
        "principalId": principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": resources or [f"{API}/*"]}],
        },
        "context": context,
    }


def op_context(op: OidcOp, client_id: str, scope: str, provider: str = "oidc") -> dict[str, Any]:
    return {"sub": client_id, "iss": op.issuer, "scope": scope, "provider": provider, "client_id": client_id}


def v2_event(token: str, route_key: str = "GET /pets") -> dict[str, Any]:
    return http_v2(token, ARN, route_key, identitySource=[f"Bearer {token}"])


def store_of(authorizer: Authorizer, index: int = 0) -> Any:
    return authorizer.router.providers[index].store  # type: ignore[attr-defined]


# ----------------------------------------------------------------------------------------------
# OIDC discovery provider, JWT access tokens


@pytest.mark.parametrize("alg", sorted(JWT_RESOURCES))
def test_jwt_allowed_for_its_audience(oidc_op: OidcOp, configure: Configure, alg: str) -> None:
    resource = JWT_RESOURCES[alg]
    configure(oidc_env(oidc_op, audience=resource))
    token = oidc_op.token(CLIENT_BASIC, resource, "read write")
    header, claims = decode_jwt_unverified(token)
    # What the OP issues, as the product relies on it (RFC 9068 section 2).
    assert header["alg"] == alg and header["typ"] == "at+jwt"
    assert claims["aud"] == resource and claims["iss"] == oidc_op.issuer and claims["scope"] == "read write"
    expected = allow_policy("op-basic-client", op_context(oidc_op, "op-basic-client", "read write"))
    assert answer(rest_token(token)) == expected
    assert answer(v2_event(token)) == {
        "isAuthorized": True,
        "context": op_context(oidc_op, "op-basic-client", "read write"),
    }


@pytest.mark.parametrize("alg", sorted(JWT_RESOURCES))
def test_jwt_refused_for_another_audience(oidc_op: OidcOp, configure: Configure, alg: str) -> None:
    # Same OP, same key, same alg: only the audience differs from the configured one.
    configure(oidc_env(oidc_op, audience=JWT_RESOURCES[alg]))
    other = oidc_op.token(CLIENT_BASIC, ttl_resource(alg.lower(), 600), "read")
    assert decode_jwt_unverified(other)[1]["aud"] == f"urn:test:{alg.lower()}:ttl:600"
    assert answer(rest_token(other)) == "401"
    assert answer(v2_event(other)) == {"isAuthorized": False}
    # And a token for a sibling resource signed with another alg is refused too.
    sibling = next(r for a, r in JWT_RESOURCES.items() if a != alg)
    assert answer(rest_token(oidc_op.token(CLIENT_BASIC, sibling, "read"))) == "401"


def test_several_audiences_any_of(oidc_op: OidcOp, configure: Configure) -> None:
    configure(oidc_env(oidc_op, audience=",".join(JWT_RESOURCES.values())))
    for resource in JWT_RESOURCES.values():
        token = oidc_op.token(CLIENT_POST, resource)  # no scope requested: the token has no scope claim
        assert "scope" not in decode_jwt_unverified(token)[1]
        assert answer(rest_token(token)) == allow_policy("op-post-client", op_context(oidc_op, "op-post-client", ""))


def test_jwt_refused_after_expiry(oidc_op: OidcOp, configure: Configure) -> None:
    # A long verdict cache: the product still never serves a verdict past the token's exp.
    configure(oidc_env(oidc_op, audience=RESOURCE_SHORT, IDP_TOKEN_CACHE_SECONDS="300"))
    token = oidc_op.token(CLIENT_BASIC, RESOURCE_SHORT, "read")
    exp = decode_jwt_unverified(token)[1]["exp"]
    event = rest_token(token)
    expected = allow_policy("op-basic-client", op_context(oidc_op, "op-basic-client", "read"))
    assert answer(event) == expected
    assert answer(event) == expected  # from the verdict cache
    time.sleep(max(0.0, exp - time.time()) + 0.05)
    assert answer(event) == "401"
    assert answer(v2_event(token)) == {"isAuthorized": False}


def test_read_only_client_denied_where_write_is_required(oidc_op: OidcOp, configure: Configure) -> None:
    routes = {"GET /pets": ["write"], "GET /public": []}
    configure(oidc_env(oidc_op, IDP_ROUTES=json.dumps(routes)))
    token = oidc_op.token(CLIENT_READ_ONLY, RESOURCE_RS256, "read")
    assert answer(rest_token(token)) == {
        "principalId": "op-read-only-client",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": [f"{API}/GET/public"]},
                {"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": [f"{API}/GET/pets"]},
            ],
        },
        "context": op_context(oidc_op, "op-read-only-client", "read"),
    }
    assert answer(v2_event(token)) == {"isAuthorized": False}
    writer = oidc_op.token(CLIENT_BASIC, RESOURCE_RS256, "write")
    assert answer(v2_event(writer)) == {
        "isAuthorized": True,
        "context": op_context(oidc_op, "op-basic-client", "write"),
    }


def test_required_typ_is_enforced(oidc_op: OidcOp, configure: Configure) -> None:
    # The OP's tokens pass IDP_REQUIRED_TYP=at+jwt (every other test) and also its media-type spelling;
    # requiring another typ refuses them, so the check is really made.
    token = oidc_op.token(CLIENT_BASIC, RESOURCE_RS256, "read")
    configure(oidc_env(oidc_op, IDP_REQUIRED_TYP="application/at+jwt"))
    assert answer(rest_token(token))["principalId"] == "op-basic-client"  # type: ignore[index]
    configure(oidc_env(oidc_op, IDP_REQUIRED_TYP="jwt"))
    assert answer(rest_token(token)) == "401"


def test_new_key_accepted_after_exactly_one_refetch(oidc_op_private: OidcOp, configure: Configure) -> None:
    op = oidc_op_private
    authorizer = configure(oidc_env(op, IDP_TOKEN_CACHE_SECONDS="0", IDP_NEGATIVE_CACHE_SECONDS="0"))
    store = store_of(authorizer)
    old_token = op.token(CLIENT_BASIC, RESOURCE_RS256, "read")
    assert answer(rest_token(old_token))["principalId"] == "op-basic-client"  # type: ignore[index]
    assert store.fetches == 1

    new = op.rotate_keys(keep_old=True)  # overlap: new keys sign, old keys still published
    new_kids = {key["kid"] for key in new["keys"]}
    new_token = op.token(CLIENT_BASIC, RESOURCE_RS256, "read")
    assert decode_jwt_unverified(new_token)[0]["kid"] in new_kids
    assert answer(rest_token(new_token))["principalId"] == "op-basic-client"  # type: ignore[index]
    assert store.fetches == 2  # exactly one refetch for the unknown kid

    # Later tokens with the new key, and the old token, need no further fetch.
    for _ in range(3):
        assert answer(rest_token(op.token(CLIENT_BASIC, RESOURCE_RS256, "read"))) != "401"
    assert answer(rest_token(old_token)) != "401"
    assert store.fetches == 2


def test_old_key_refused_after_rotation_once_the_key_set_is_refetched(
    oidc_op_private: OidcOp, configure: Configure
) -> None:
    """Keys rotate and the old one is removed at the OP.

    The store serves a cached key until ``IDP_JWKS_MAX_AGE_SECONDS``; after that the refetched set
    lacks the old kid and old tokens are refused. A token with a new kid triggers the refetch
    sooner, and the old key is gone from that moment.
    """
    op = oidc_op_private
    max_age = 2.0
    new_keys = generate_signing_jwks()  # generated up front: the max-age window is short
    authorizer = configure(
        oidc_env(
            op,
            IDP_JWKS_MAX_AGE_SECONDS=str(max_age),
            IDP_TOKEN_CACHE_SECONDS="0",
            IDP_NEGATIVE_CACHE_SECONDS="0",
        )
    )
    store = store_of(authorizer)
    old_token = op.token(CLIENT_BASIC, RESOURCE_RS256, "read")
    old_kid = decode_jwt_unverified(old_token)[0]["kid"]
    fetched = time.monotonic()
    assert answer(rest_token(old_token))["principalId"] == "op-basic-client"  # type: ignore[index]
    assert store.fetches == 1

    op.set_signing_keys(new_keys)  # rotate, old keys removed at once
    assert old_kid not in op.kids()
    assert time.monotonic() - fetched < max_age - 0.5, "machine too slow for the max-age window"
    # Within the max age the cached old key is still served: no fetch, still allowed.
    assert answer(rest_token(old_token))["principalId"] == "op-basic-client"  # type: ignore[index]
    assert store.fetches == 1

    time.sleep(max(0.0, fetched + max_age - time.monotonic()) + 0.3)
    assert answer(rest_token(old_token)) == "401"
    assert store.fetches == 2
    new_token = op.token(CLIENT_BASIC, RESOURCE_RS256, "read")
    assert answer(rest_token(new_token))["principalId"] == "op-basic-client"  # type: ignore[index]
    assert store.fetches == 2


def test_new_kid_refetch_drops_the_removed_key_at_once(oidc_op_private: OidcOp, configure: Configure) -> None:
    op = oidc_op_private
    authorizer = configure(oidc_env(op, IDP_TOKEN_CACHE_SECONDS="0", IDP_NEGATIVE_CACHE_SECONDS="0"))
    store = store_of(authorizer)
    old_token = op.token(CLIENT_BASIC, RESOURCE_RS256, "read")
    assert answer(rest_token(old_token)) != "401"
    op.rotate_keys(keep_old=False)
    assert answer(rest_token(op.token(CLIENT_BASIC, RESOURCE_RS256, "read"))) != "401"
    assert store.fetches == 2
    # The refetched set no longer holds the old kid. The product asks once more for a kid it lacks
    # (no refresh has missed yet), then the penalty box answers for IDP_JWKS_COOLDOWN_SECONDS.
    assert answer(rest_token(old_token)) == "401"
    assert store.fetches == 3
    for _ in range(5):
        assert answer(rest_token(old_token)) == "401"
    assert store.fetches == 3


# ----------------------------------------------------------------------------------------------
# Introspection provider (RFC 7662), opaque access tokens


def introspection_context(op: OidcOp, client_id: str, scope: str, provider: str = "introspection") -> dict[str, Any]:
    # oidc-provider's introspection of a client_credentials token has no ``sub``: the client is the subject.
    return op_context(op, client_id, scope, provider)


@pytest.mark.parametrize("authorizer_client", [CLIENT_BASIC, CLIENT_POST], ids=lambda c: c.auth_method)
def test_opaque_token_allowed(oidc_op: OidcOp, configure: Configure, authorizer_client: Any) -> None:
    configure(introspection_env(oidc_op, authorizer_client))
    token = oidc_op.token(CLIENT_BASIC, RESOURCE_OPAQUE, "read write")
    assert "sub" not in oidc_op.introspect(token)  # what the OP answers, as the product must handle it
    assert answer(rest_token(token)) == allow_policy(
        "op-basic-client", introspection_context(oidc_op, "op-basic-client", "read write")
    )
    assert answer(v2_event(token)) == {
        "isAuthorized": True,
        "context": introspection_context(oidc_op, "op-basic-client", "read write"),
    }


def test_explicit_introspection_url_without_discovery(oidc_op: OidcOp, configure: Configure) -> None:
    env = introspection_env(oidc_op, IDP_INTROSPECTION_URL=oidc_op.introspection_endpoint)
    del env["IDP_ISSUER"]
    configure(env)
    response = answer(rest_token(oidc_op.token(CLIENT_BASIC, RESOURCE_OPAQUE, "read")))
    assert isinstance(response, dict) and response["principalId"] == "op-basic-client"
    assert response["policyDocument"]["Statement"][0]["Effect"] == "Allow"


def test_opaque_token_with_audience_check(oidc_op: OidcOp, configure: Configure) -> None:
    configure(introspection_env(oidc_op, IDP_AUDIENCE=RESOURCE_OPAQUE))
    assert answer(rest_token(oidc_op.token(CLIENT_POST, RESOURCE_OPAQUE, "read"))) != "401"
    # Another resource's opaque token (aud urn:test:opaque:ttl:600), and one with no aud at all.
    assert answer(rest_token(oidc_op.token(CLIENT_POST, ttl_resource("opaque", 600), "read"))) == "401"
    assert answer(rest_token(oidc_op.token(CLIENT_POST, None, "read"))) == "401"


def test_unknown_and_jwt_tokens_refused_by_introspection(oidc_op: OidcOp, configure: Configure) -> None:
    configure(introspection_env(oidc_op))
    assert answer(rest_token("NotAToken0123456789abcdefghijklmnopqrstuvwx")) == "401"  # {"active": false}
    # oidc-provider answers 400 unsupported_token_type for its own JWTs: a refused token, not an outage.
    assert answer(rest_token(oidc_op.token(CLIENT_BASIC, RESOURCE_RS256, "read"))) == "401"


def test_bad_client_credentials_fail_closed(oidc_op: OidcOp, configure: Configure) -> None:
    from idp_authorizer.core.errors import AuthorizerUnavailable

    configure(introspection_env(oidc_op, IDP_CLIENT_SECRET="wrong-secret"))  # the OP answers 401 invalid_client
    token = oidc_op.token(CLIENT_BASIC, RESOURCE_OPAQUE, "read")
    with pytest.raises(AuthorizerUnavailable):
        handler.handler(rest_token(token), None)


def test_revoked_token_refused_once_the_cache_window_passed(oidc_op: OidcOp, configure: Configure) -> None:
    window = 2.0
    configure(introspection_env(oidc_op, IDP_INTROSPECTION_CACHE_SECONDS=str(window)))
    token = oidc_op.token(CLIENT_POST, RESOURCE_OPAQUE, "read")
    expected = allow_policy("op-post-client", introspection_context(oidc_op, "op-post-client", "read"))
    assert answer(rest_token(token)) == expected
    cached_at = time.monotonic()
    oidc_op.revoke(token, CLIENT_POST)
    assert oidc_op.introspect(token) == {"active": False}
    # Within the window the cached verdict stands (the documented cost of caching introspection).
    assert time.monotonic() - cached_at < window - 0.5, "machine too slow for the cache window"
    assert answer(rest_token(token)) == expected
    time.sleep(max(0.0, cached_at + window - time.monotonic()) + 0.1)
    assert answer(rest_token(token)) == "401"
    assert answer(v2_event(token)) == {"isAuthorized": False}


def test_opaque_token_refused_after_expiry(oidc_op: OidcOp, configure: Configure) -> None:
    configure(introspection_env(oidc_op, IDP_INTROSPECTION_CACHE_SECONDS="300"))
    # 3 s: long enough to be valid at the first call on a loaded machine, short enough to wait out.
    token = oidc_op.token(CLIENT_BASIC, ttl_resource("opaque", 3), "read")
    exp = oidc_op.introspect(token)["exp"]
    assert answer(rest_token(token)) != "401"
    time.sleep(max(0.0, exp - time.time()) + 0.05)
    assert answer(rest_token(token)) == "401"  # the cached verdict never outlives exp


def test_read_only_client_denied_where_write_is_required_opaque(oidc_op: OidcOp, configure: Configure) -> None:
    configure(introspection_env(oidc_op, IDP_ROUTES=json.dumps({"GET /pets": ["write"]})))
    token = oidc_op.token(CLIENT_READ_ONLY, RESOURCE_OPAQUE, "read")
    assert answer(rest_token(token)) == {
        "principalId": "op-read-only-client",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": [f"{API}/GET/pets"]}],
        },
        "context": introspection_context(oidc_op, "op-read-only-client", "read"),
    }
    assert answer(v2_event(token)) == {"isAuthorized": False}
    writer = oidc_op.token(CLIENT_BASIC, RESOURCE_OPAQUE, "write")
    assert answer(rest_token(writer)) == allow_policy(
        "op-basic-client", introspection_context(oidc_op, "op-basic-client", "write"), [f"{API}/GET/pets"]
    )


# ----------------------------------------------------------------------------------------------
# Several providers at once


def test_several_providers_each_token_routed_to_its_own(oidc_op: OidcOp, dev_idp: DevIdp, configure: Configure) -> None:
    providers = [
        {
            "name": "op-jwt",
            "provider": "oidc",
            "issuer": oidc_op.issuer,
            "audience": [RESOURCE_RS256, JWT_RESOURCES["ES256"]],
            "algorithms": ["RS256", "ES256", "PS256"],
            "required_typ": "at+jwt",
        },
        {
            "name": "op-opaque",
            "provider": "introspection",
            "issuer": oidc_op.issuer,
            "client_id": CLIENT_POST.client_id,
            "client_secret": CLIENT_POST.client_secret,
            "client_auth": "client_secret_post",
        },
        {
            "name": "dev",
            "provider": "oidc",
            "issuer": dev_idp.issuer,
            "audience": [dev_idp.audience],
            "algorithms": ["ES256"],
        },
    ]
    authorizer = configure(
        {"IDP_PROVIDERS": json.dumps(providers), "IDP_ALLOW_LOOPBACK_HTTP": "true", "IDP_RESPONSE": "auto"}
    )
    assert [p.name for p in authorizer.router.providers] == ["op-jwt", "op-opaque", "dev"]

    jwt_token = oidc_op.token(CLIENT_BASIC, JWT_RESOURCES["ES256"], "read")
    opaque = oidc_op.token(CLIENT_READ_ONLY, RESOURCE_OPAQUE, "read")
    dev_token = dev_idp.mint(alg="ES256", scope="read write")
    assert answer(rest_token(jwt_token)) == allow_policy(
        "op-basic-client", op_context(oidc_op, "op-basic-client", "read", "op-jwt")
    )
    assert answer(rest_token(opaque)) == allow_policy(
        "op-read-only-client", introspection_context(oidc_op, "op-read-only-client", "read", "op-opaque")
    )
    assert answer(v2_event(dev_token)) == {
        "isAuthorized": True,
        "context": {
            "sub": "user-123",
            "iss": dev_idp.issuer,
            "scope": "read write",
            "provider": "dev",
            "client_id": "demo-client",
        },
    }
    # Each provider keeps its own rules: an OP JWT for an audience only the OP provider lacks, a dev
    # token with an algorithm only the OP provider allows, a JWT from an issuer nobody trusts.
    assert answer(rest_token(oidc_op.token(CLIENT_BASIC, JWT_RESOURCES["PS256"], "read"))) == "401"
    assert answer(rest_token(dev_idp.mint(alg="RS256"))) == "401"
    assert answer(rest_token(dev_idp.mint(alg="ES256", iss="https://stranger.example"))) == "401"
