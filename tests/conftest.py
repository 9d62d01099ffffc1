"""Shared fixtures: an isolated environment, the dev IdP on 127.0.0.1, the real handler built from env.

Helpers that are not fixtures live in tests/support (on ``sys.path``, see pyproject.toml).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

import pytest
from oidc_op import oidc_op_fixture, oidc_op_private_fixture  # noqa: F401
from servers import memcached_server, redis_server  # noqa: F401
from tally import TALLIES

from idp_authorizer import handler as handler_module
from idp_authorizer.aws.compose import build_authorizer
from idp_authorizer.aws.runtime import Authorizer
from idp_authorizer.aws.settings import load_settings
from idp_authorizer.tools.devidp import DevIdp


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


@pytest.fixture
def build(monkeypatch) -> Iterator[Callable[..., Authorizer]]:
    """Compose an authorizer from ``IDP_*`` variables with an injected clock."""
    built: list[Authorizer] = []

    def make(env: dict[str, str], clock: Callable[[], float] = time.time) -> Authorizer:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        authorizer = build_authorizer(load_settings(), clock=clock)
        built.append(authorizer)
        return authorizer

    yield make
    for authorizer in built:
        authorizer.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The counts tests gathered (tests/support/tally.py), once, whatever ran and in whatever order."""
    lines = [t.line(name) for name, t in TALLIES.items() if t.counts]
    if lines:
        terminalreporter.section("counts")
        for line in lines:
            terminalreporter.write_line(line)
