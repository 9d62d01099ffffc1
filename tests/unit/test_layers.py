"""The rings of the design, checked on every import of every module (lazy imports included).

    core ← jose ← infra ← providers ← aws adapter (+ handler) ← tools

A module may import its own ring and the rings to its left, and only the third-party packages its
ring is allowed; the tools are never on the Lambda path. A wrong-way import fails CI here.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RINGS = ("core", "jose", "infra", "providers", "aws", "tools")
THIRD_PARTY = {
    "core": set(),
    "jose": {"joserfc", "cryptography"},
    "infra": {"joserfc", "cryptography", "aiohttp", "aiocache", "redis", "aiomcache", "yarl", "multidict"},
}
THIRD_PARTY["providers"] = THIRD_PARTY["infra"]
THIRD_PARTY["aws"] = THIRD_PARTY["infra"] | {"pydantic", "pydantic_settings", "snapshot_restore_py"}


def ring_of(module: str) -> str | None:
    """The ring of a project module (``None`` for third-party and standard-library modules)."""
    parts = module.split(".")
    if parts[0] == "providers":
        return "providers"
    if parts[0] != "idp_authorizer":
        return None
    if len(parts) == 1:
        return "core"  # the package itself: its version only
    if parts[1] == "handler":
        return "aws"
    return parts[1] if parts[1] in RINGS else "unknown"


def modules() -> list[tuple[str, Path]]:
    found = []
    for package in ("idp_authorizer", "providers"):
        for path in sorted((ROOT / package).rglob("*.py")):
            dotted = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            found.append((dotted, path))
    return found


def imports(path: Path, module: str) -> list[tuple[str, int]]:
    """Every module ``path`` imports, at any depth (functions too), with its line."""
    found = []
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            found.append((base, node.lineno))
            # "from idp_authorizer.core import iam" names a module too
            found += [(f"{base}.{alias.name}", node.lineno) for alias in node.names if ring_of(base) is not None]
    return found


def test_every_module_belongs_to_a_ring():
    assert all(ring_of(name) in RINGS for name, _ in modules()), [n for n, _ in modules() if ring_of(n) not in RINGS]


@pytest.mark.parametrize(("module", "path"), modules(), ids=[name for name, _ in modules()])
def test_imports_point_inward(module: str, path: Path):
    ring = ring_of(module)
    assert ring is not None
    allowed_rings = set(RINGS[: RINGS.index(ring) + 1])
    wrong = []
    for name, line in imports(path, module):
        target = ring_of(name)
        top = name.split(".")[0]
        if target is not None:
            if target not in allowed_rings and target != "unknown":
                wrong.append(f"line {line}: {name} ({target} ring)")
        elif ring != "tools" and top not in sys.stdlib_module_names and top not in THIRD_PARTY[ring] and top:
            wrong.append(f"line {line}: {name} (third-party, not for the {ring} ring)")
    assert not wrong, f"{module} ({ring} ring) imports outward: " + "; ".join(wrong)


def _probe(code: str, env: dict[str, str] | None = None) -> dict[str, list[str]]:
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True, env=env, cwd=ROOT
    )
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_the_core_loads_no_third_party_package():
    code = (
        "import json, sys, pkgutil, importlib, idp_authorizer.core as core\n"
        "for m in pkgutil.iter_modules(core.__path__): importlib.import_module('idp_authorizer.core.' + m.name)\n"
        "print(json.dumps({'loaded': sorted({n.split('.')[0] for n in sys.modules})}))"
    )
    loaded = set(_probe(code)["loaded"])
    assert not loaded & {"aiohttp", "aiocache", "pydantic", "pydantic_settings", "cryptography", "joserfc"}, loaded


def test_the_lambda_path_never_imports_the_tools():
    import os

    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("IDP_")},
        "IDP_PROVIDER": "jwks",
        "IDP_JWKS_URL": "https://idp.example/jwks.json",
        "IDP_ISSUER": "https://idp.example/",
        "IDP_AUDIENCE": "api",
    }
    code = (
        "import json, sys\n"
        "from idp_authorizer import handler\n"
        "assert handler._authorizer is not None\n"
        "print(json.dumps({'loaded': sorted(n for n in sys.modules if n.startswith(('idp_authorizer', 'providers')))}))"
    )
    loaded = _probe(code, env)["loaded"]
    assert not [name for name in loaded if name.startswith("idp_authorizer.tools")], loaded
    assert "providers.jwks" in loaded and "providers.introspection" not in loaded  # by provider kind, lazily
