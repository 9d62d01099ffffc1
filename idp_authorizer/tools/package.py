"""``idp-authorizer package``: a deployable Lambda zip built from manylinux wheels.

The runtime dependencies come from PyPI as wheels for the target (``pip install --platform
manylinux2014_<arch> --implementation cp --python-version X.Y --only-binary=:all: --target``),
so a build on macOS or x86_64 still yields a zip that imports on Lambda's Amazon Linux for arm64.
Our two packages are copied from where they are imported. Bytecode is compiled by an interpreter
of the target version with ``--invalidation-mode unchecked-hash``: Lambda's ``/var/task`` is
read-only, so a ``.pyc`` that failed its freshness check (zip timestamps have 2-second resolution)
would be recompiled in memory at every cold start; an unchecked-hash ``.pyc`` is always used.
With no interpreter of the target version, the zip ships without ``.pyc`` and says so.

Limits: https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
(50 MB zipped for a direct upload, 250 MB unzipped including layers).

The report names a content-addressed S3 key (:func:`content_key`): CloudFormation does not notice a new
object uploaded under the same key ("Changes to a deployment package in Amazon S3 are not detected
automatically during stack updates. To update the function code, change the object key or version":
https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-lambda-function-code.html),
so each build is uploaded under its own key, the same for the same bytes (the zip is reproducible).
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

ARCHES = {"arm64": "aarch64", "x86_64": "x86_64"}
PYTHONS = ("3.11", "3.12", "3.13")
EXTRAS = ("redis", "memcached")
OUR_PACKAGES = ("idp_authorizer", "providers")
ZIP_LIMIT = 50 * 1024 * 1024
UNZIPPED_LIMIT = 250 * 1024 * 1024
LAMBDA_TASK_ROOT = "/var/task"
_DROP_DIRS = {"__pycache__", "tests", "test", "bin"}
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
LATEST_ZIP = "idp-authorizer-lambda.zip"


@dataclass
class PackageResult:
    """What was built and how big it is."""

    zip_path: Path
    zipped_bytes: int
    unzipped_bytes: int
    files: int
    pyc_files: int
    compiled_with: str | None
    warnings: list[str] = field(default_factory=list)

    def report(self) -> str:
        lines = [
            f"built {self.zip_path} ({self.files} files)",
            f"  zipped   {_mb(self.zipped_bytes)} of the {_mb(ZIP_LIMIT)} direct-upload limit"
            f" ({100 * self.zipped_bytes / ZIP_LIMIT:.0f}%)",
            f"  unzipped {_mb(self.unzipped_bytes)} of the {_mb(UNZIPPED_LIMIT)} limit"
            f" ({100 * self.unzipped_bytes / UNZIPPED_LIMIT:.0f}%)",
            f"  .pyc     {self.pyc_files} files, unchecked-hash, compiled by {self.compiled_with}"
            if self.compiled_with
            else "  .pyc     none",
            "  handler  idp_authorizer.handler.handler",
            f"  latest   also copied to {self.zip_path.parent / LATEST_ZIP} (the path deploy/ templates use)",
            f"  s3 key   {content_key(self.zip_path)} (upload under this key and pass it as CodeS3Key:"
            " a stack update deploys new code only when the key or object version changes)",
        ]
        if self.zipped_bytes > ZIP_LIMIT:
            lines.append("  too big for a direct upload: upload it to S3 and point the function at the object")
        if self.unzipped_bytes > UNZIPPED_LIMIT:
            lines.append("  over Lambda's unzipped limit: it cannot be deployed as a zip")
        return "\n".join(lines + [f"warning: {w}" for w in self.warnings])


def build(
    arch: str,
    python: str,
    *,
    extras: Sequence[str] = (),
    out_dir: Path = Path("dist"),
    interpreter: str | None = None,
    compile_bytecode: bool = True,
) -> PackageResult:
    """Build ``<out_dir>/idp-authorizer-lambda-<arch>-py<python>.zip``; raises ``RuntimeError`` on failure."""
    if arch not in ARCHES or python not in PYTHONS:
        raise ValueError(f"arch must be one of {sorted(ARCHES)} and python one of {PYTHONS}")
    unknown = sorted(set(extras) - set(EXTRAS))
    if unknown:
        raise ValueError(f"--with accepts {', '.join(EXTRAS)}; not {', '.join(unknown)}")
    warnings: list[str] = []
    with tempfile.TemporaryDirectory(prefix="idp-authorizer-lambda-") as tmp:
        root = Path(tmp)
        install_wheels(root, arch, python, requirements(extras))
        copy_our_packages(root)
        prune(root)
        compiler = None
        if compile_bytecode:
            compiler = find_interpreter(python, interpreter)
            if compiler is None:
                warnings.append(_no_interpreter(python))
            else:
                compile_tree(root, compiler)
        out_dir.mkdir(parents=True, exist_ok=True)
        zip_path = out_dir / f"idp-authorizer-lambda-{arch}-py{python}.zip"
        files, unzipped = write_zip(root, zip_path)
        pyc = sum(1 for _ in root.rglob("*.pyc"))
    # The deploy templates (deploy/) point at one stable name: the latest build.
    shutil.copyfile(zip_path, out_dir / LATEST_ZIP)
    return PackageResult(zip_path, zip_path.stat().st_size, unzipped, files, pyc, compiler, warnings)


def content_key(zip_path: Path) -> str:
    """An S3 key named for the zip's bytes: ``<stem>-<first 16 hex digits of its SHA-256>.zip``."""
    digest = hashlib.sha256(zip_path.read_bytes()).hexdigest()
    return f"{zip_path.stem}-{digest[:16]}.zip"


def requirements(extras: Sequence[str] = ()) -> list[str]:
    """The runtime dependencies (and the requested extras) from ``pyproject.toml`` or installed metadata."""
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    if pyproject.is_file():
        project = tomllib.loads(pyproject.read_text())["project"]
        optional = project.get("optional-dependencies", {})
        return list(project["dependencies"]) + [req for extra in extras for req in optional.get(extra, [])]
    found = []
    for req in metadata.requires("idp-authorizer") or []:
        marker = re.search(r"""extra\s*==\s*["'](\w+)["']""", req)
        if marker is None or marker[1] in extras:
            found.append(req.split(";")[0].strip())
    return found


def install_wheels(target: Path, arch: str, python: str, reqs: Sequence[str]) -> None:
    """``pip install`` manylinux wheels for the target into ``target`` (no sdists, no bytecode)."""
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
        "--platform", f"manylinux2014_{ARCHES[arch]}", "--implementation", "cp",
        "--python-version", python, "--only-binary=:all:", "--target", str(target), *reqs,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 - fixed argv
    if done.returncode != 0:
        raise RuntimeError(f"pip could not install the wheels for {arch}/py{python}:\n{done.stderr.strip()}")


def copy_our_packages(target: Path) -> None:
    """Copy ``idp_authorizer`` and ``providers`` from where they are imported (sources and ``py.typed``).

    The operator tools (``idp_authorizer/tools``) stay out: Lambda never runs them.
    """
    caches = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in OUR_PACKAGES:
        source = Path(__import__(name).__file__ or "").parent

        def ignore(folder: str, names: list[str], source: Path = source) -> set[str]:
            tools = {"tools"} if Path(folder) == source and "tools" in names else set()
            return set(caches(folder, names)) | tools

        shutil.copytree(source, target / name, ignore=ignore)


def prune(root: Path) -> None:
    """Drop what Lambda never uses: ``tests``/``bin`` at the top, caches, and ``RECORD`` files."""
    for path in sorted(root.iterdir()):
        if path.is_dir() and path.name in _DROP_DIRS:
            shutil.rmtree(path)
    for cache in list(root.rglob("__pycache__")):
        shutil.rmtree(cache)
    for record in root.glob("*.dist-info/RECORD"):
        record.unlink()


def find_interpreter(python: str, explicit: str | None = None) -> str | None:
    """An interpreter whose version is ``python``: the given one, this one, ``pythonX.Y`` or pyenv's."""
    candidates = [explicit] if explicit else [sys.executable, shutil.which(f"python{python}")]
    if not explicit:
        pyenv = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
        candidates += sorted(glob.glob(f"{pyenv}/versions/{python}.*/bin/python{python}"), reverse=True)
    for candidate in candidates:
        if candidate and _version_of(candidate) == python:
            return candidate
    if explicit:
        raise RuntimeError(f"--interpreter {explicit} is not a working Python {python}")
    return None


def _version_of(executable: str) -> str | None:
    try:
        done = subprocess.run(  # noqa: S603 - a candidate interpreter, no shell
            [executable, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
    except OSError:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def compile_tree(root: Path, interpreter: str) -> None:
    """``compileall`` with unchecked-hash invalidation into ``__pycache__`` (PEP 3147 names).

    ``-d /var/task`` records the path where Lambda unpacks the files instead of the temporary build
    folder, so the bytes of each ``.pyc`` (and the zip) are the same for two builds of the same inputs.
    """
    command = [
        interpreter, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash",
        "-d", LAMBDA_TASK_ROOT, str(root),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 - fixed argv
    if done.returncode != 0:
        raise RuntimeError(f"compileall failed:\n{(done.stdout + done.stderr).strip()[-2000:]}")


def write_zip(root: Path, zip_path: Path) -> tuple[int, int]:
    """A reproducible zip (sorted names, fixed times, 0644); returns (files, unzipped bytes)."""
    files = sorted(p for p in root.rglob("*") if p.is_file())
    unzipped = 0
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in files:
            info = zipfile.ZipInfo(path.relative_to(root).as_posix(), _FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            data = path.read_bytes()
            unzipped += len(data)
            archive.writestr(info, data)
    return len(files), unzipped


def _no_interpreter(python: str) -> str:
    return (
        f"no Python {python} interpreter found, so the zip has no .pyc: Lambda will compile every module in "
        f"memory at each cold start (/var/task is read-only). Install python{python} or pass --interpreter."
    )


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"
