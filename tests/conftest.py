"""Shared fixtures: an isolated environment, the dev IdP on 127.0.0.1, the real handler built from env."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from oidc_op import oidc_op_fixture, oidc_op_private_fixture  # noqa: F401
from servers import memcached_server, redis_server  # noqa: F401

from idp_authorizer import handler as handler_module
from idp_authorizer.aws.runtime import Authorizer
from idp_authorizer.tools.devidp import DevIdp

ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/pets"


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees another test's (or the developer's) IDP_* variables."""
    for name in list(os.environ):
        if name.startswith("IDP_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def dev_idp() -> Iterator[DevIdp]:
    """The product's own dev IdP, serving discovery and JWKS on 127.0.0.1 (shared; do not rotate)."""
    with DevIdp(audience="demo-api") as idp:
        yield idp


@pytest.fixture
def fresh_idp() -> Iterator[DevIdp]:
    """A dev IdP of this test's own: rotate its keys, count its hits."""
    with DevIdp(audience="demo-api") as idp:
        yield idp


def oidc_env(idp: DevIdp, **extra: str) -> dict[str, str]:
    """Environment for an OIDC-discovery provider against ``idp``."""
    env = {
        "IDP_PROVIDER": "oidc",
        "IDP_ISSUER": idp.issuer,
        "IDP_AUDIENCE": idp.audience,
        "IDP_ALGORITHMS": "RS256,PS256,ES256,EdDSA",
        "IDP_ALLOW_LOOPBACK_HTTP": "true",
    }
    env.update(extra)
    return env


@pytest.fixture
def configure(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[dict[str, str]], Authorizer]]:
    """Set ``IDP_*`` variables and (re)build the real handler from them, as a cold start does."""

    def apply(env: dict[str, str]) -> Authorizer:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        authorizer = handler_module.init()
        assert authorizer is not None, "configuration was refused"
        return authorizer

    yield apply
    handler_module.close()
    handler_module.init()


def token_event(token: str, arn: str = ARN) -> dict[str, Any]:
    return {"type": "TOKEN", "authorizationToken": f"Bearer {token}", "methodArn": arn}
