"""Auth0 as a preset of the generic JWKS verifier (``IDP_PROVIDER=auth0``).

Tenant ``{domain}`` issues tokens with ``iss`` ``https://{domain}/`` and publishes its keys at
``https://{domain}/.well-known/jwks.json``; API permissions arrive in the ``permissions`` claim when
RBAC is on, which the rule engine reads next to ``scope``.
"""

from __future__ import annotations

import re

_DOMAIN = re.compile(r"[A-Za-z0-9.-]+(:\d+)?")


def auth0_issuer(domain: str) -> str:
    return f"https://{_clean(domain)}/"


def auth0_jwks_url(domain: str) -> str:
    return f"https://{_clean(domain)}/.well-known/jwks.json"


def _clean(domain: str) -> str:
    host = domain.strip().removeprefix("https://").rstrip("/")
    if not _DOMAIN.fullmatch(host):
        raise ValueError("IDP_AUTH0_DOMAIN must be a host name such as example.eu.auth0.com")
    return host
