"""The authorizer's settings for a load run, and the probe of whether this build accepts them."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys

from benchmarks.load_config import REPO_ROOT, LoadConfig
from benchmarks.load_servers import AUDIENCE, CLIENT_ID, CLIENT_SECRET


def authorizer_env(
    config: LoadConfig, issuer: str, introspection_url: str | None, cache_url: str | None
) -> dict[str, str]:
    """``IDP_*`` for the dev IdP's issuer, plus an introspection provider and a shared cache when given."""
    env = {"IDP_ALLOW_LOOPBACK_HTTP": "true", "IDP_LOG_LEVEL": "INFO"}
    if introspection_url is None:
        env.update(IDP_PROVIDER="oidc", IDP_ISSUER=issuer, IDP_AUDIENCE=AUDIENCE, IDP_ALGORITHMS=config.alg)
    else:
        env["IDP_PROVIDERS"] = json.dumps([_jwt_provider(config, issuer), _opaque_provider(introspection_url)])
    if cache_url is not None:
        env["IDP_CACHE_URL"] = cache_url
    return {**env, **config.extra_env()}


def _jwt_provider(config: LoadConfig, issuer: str) -> dict[str, str]:
    return {"provider": "oidc", "name": "dev-idp", "issuer": issuer, "audience": AUDIENCE, "algorithms": config.alg}


def _opaque_provider(introspection_url: str) -> dict[str, str]:
    return {
        "provider": "introspection",
        "name": "opaque",
        "introspection_url": introspection_url,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "audience": AUDIENCE,
    }


def child_env(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment without its ``IDP_*`` variables, plus ``extra``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    return {**base, **extra}


def probe(env: dict[str, str]) -> str | None:
    """``None`` if the handler builds from ``env`` in a fresh process, else the logged reason."""
    code = "from idp_authorizer import handler\nprint('PROBE', handler._authorizer is not None)\n"
    proc = subprocess.run(
        [sys.executable, "-c", code], env=child_env(env), capture_output=True, text=True, cwd=REPO_ROOT, check=False
    )
    if "PROBE True" in proc.stdout:
        return None
    for line in proc.stdout.splitlines():
        with contextlib.suppress(ValueError):
            message = json.loads(line).get("message")
            if message:
                return str(message)
    return (proc.stderr.strip().splitlines() or ["handler import failed"])[-1]
