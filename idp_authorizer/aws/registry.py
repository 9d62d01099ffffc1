"""The provider kinds: each ``IDP_PROVIDER`` value names the driver module that builds it.

A driver module exposes ``DRIVER`` (:class:`providers.driver.Driver`): the URLs its provider fetches,
derived from the settings without I/O, and how it is built. The runtime (:mod:`.compose`) and the
doctor (:mod:`idp_authorizer.tools.checkup`) both go through :func:`driver`, so they fetch the same
URLs. Only the configured kinds' modules are imported, so a cold start pays for one driver.

Adding a kind: write ``providers/<kind>.py`` with its ``DRIVER``, add its line to :data:`DRIVERS`,
and its value to ``ProviderKind`` (with what it needs) in :mod:`.settings`.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

from idp_authorizer.core.errors import ConfigurationError, Reason

if TYPE_CHECKING:
    from idp_authorizer.aws.compose import Collaborators
    from idp_authorizer.aws.settings import ProviderConfig
    from idp_authorizer.core.provider import Provider
    from providers.driver import Driver, Endpoints

DRIVERS: Mapping[str, str] = MappingProxyType(
    {
        "jwks": "providers.jwks",
        "oidc": "providers.oidc",
        "auth0": "providers.auth0",
        "cognito": "providers.cognito",
        "entra": "providers.entra",
        "introspection": "providers.introspection",
    }
)
"""Provider kind to the module whose ``DRIVER`` builds it (imported on first use)."""


def driver(kind: str) -> Driver:
    """The driver of ``kind``, its module imported now; :class:`ConfigurationError` for an unknown kind."""
    from providers.driver import Driver

    module = DRIVERS.get(kind)
    if module is None:
        known = ", ".join(sorted(DRIVERS))
        raise ConfigurationError(Reason.CONFIGURATION_ERROR, f"IDP_PROVIDER: not a provider kind (one of {known})")
    found = getattr(importlib.import_module(module), "DRIVER", None)
    if not isinstance(found, Driver):
        raise TypeError(f"{module} has no DRIVER")
    return found


def endpoints(config: ProviderConfig) -> Endpoints:
    """Where the provider ``config`` describes fetches from (no I/O)."""
    return driver(config.provider).endpoints(config)


def build_provider(config: ProviderConfig, parts: Collaborators) -> Provider:
    """The provider ``config`` describes, built from its kind's driver (no I/O)."""
    return driver(config.provider).build(config, parts)
