"""``npm ci`` for the Node projects the tests drive (tests/oidc_provider, tests/serverless_offline)."""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import tempfile
from pathlib import Path


def ensure_node_modules(project: Path, package: str, *, timeout: float = 300) -> None:
    """Run ``npm ci`` in ``project`` once if ``node_modules/<package>`` is missing.

    ``scripts/test-deps.sh`` does it ahead of the run in CI; a file lock keeps parallel workers
    (pytest-xdist) from installing at the same time.
    """
    marker = project / "node_modules" / package / "package.json"
    if marker.exists():
        return
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise RuntimeError(f"node and npm are needed for the tests using {project.name} (see scripts/test-deps.sh)")
    with open(Path(tempfile.gettempdir()) / f"idp-authorizer-npm-ci-{project.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if marker.exists():
                return
            proc = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--silent"],
                cwd=project,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
            if proc.returncode != 0:
                raise RuntimeError(f"npm ci failed in {project}:\n{proc.stdout}\n{proc.stderr}")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
