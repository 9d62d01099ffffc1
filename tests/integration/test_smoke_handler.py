"""The real handler against the dev IdP: the first thing a newcomer's test run shows."""

from conftest import oidc_env
from event_factory import rest_token

from idp_authorizer import handler


def test_valid_token_allowed_then_served_from_cache(fresh_idp, configure):
    configure(oidc_env(fresh_idp))
    event = rest_token(fresh_idp.mint(scope="read"))
    first = handler.handler(event, None)
    hits = dict(fresh_idp.hits)
    second = handler.handler(event, None)
    assert first == second
    assert first["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    assert dict(fresh_idp.hits) == hits == {"/.well-known/openid-configuration": 1, "/.well-known/jwks.json": 1}
