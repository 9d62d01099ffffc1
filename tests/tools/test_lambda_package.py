"""Smoke test of the installed artefact: the Lambda zip for this machine, unpacked, runs the handler.

Builds from PyPI wheels (network), about 10-30 s. Deselect with ``-m "not lambda_package"``.
"""

import json
import platform
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from idp_authorizer.tools import package

pytestmark = pytest.mark.lambda_package

ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine().lower())

RUN_HANDLER = """
import json, sys
task = sys.argv[1]
sys.path.insert(0, task)
from idp_authorizer.handler import handler
import aiohttp, cryptography, idp_authorizer, pydantic_core
for module in (aiohttp, cryptography, idp_authorizer, pydantic_core):
    assert module.__file__.startswith(task), module.__file__
assert idp_authorizer.handler.__cached__.startswith(task)
event = {"type": "TOKEN", "authorizationToken": "Bearer " + sys.argv[2],
         "methodArn": "arn:aws:execute-api:us-east-1:123456789012:abc/prod/GET/pets"}
print(json.dumps(handler(event, None)))
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> package.PackageResult:
    if ARCH is None or sys.platform != "linux" or sys.version_info[:2] != (3, 11):
        pytest.skip("the zip is built for Linux x86_64/arm64 and run here with Python 3.11")
    result = package.build(ARCH, "3.11", out_dir=tmp_path_factory.mktemp("dist"))
    print(result.report())
    return result


def test_zip_is_named_for_its_target_and_within_lambda_limits(built: package.PackageResult) -> None:
    assert built.zip_path.name == f"idp-authorizer-lambda-{ARCH}-py3.11.zip"
    latest = built.zip_path.parent / package.LATEST_ZIP  # what deploy/ templates point at
    assert latest.read_bytes() == built.zip_path.read_bytes()
    assert built.zipped_bytes < package.ZIP_LIMIT and built.unzipped_bytes < package.UNZIPPED_LIMIT
    assert "of the 50.0 MB direct-upload limit" in built.report()


def test_zip_holds_unchecked_pyc_and_no_tests_or_cache_clients(built: package.PackageResult) -> None:
    names = zipfile.ZipFile(built.zip_path).namelist()
    tops = {name.split("/")[0] for name in names}
    assert {"idp_authorizer", "providers", "aiohttp", "joserfc", "aiocache", "pydantic_settings"} <= tops
    assert not tops & {"tests", "test", "redis", "aiomcache", "bin"}
    assert not any(name.endswith("dist-info/RECORD") for name in names)
    ours = [n for n in names if n.startswith(("idp_authorizer/", "providers/")) and n.endswith(".py")]
    for source in ours:
        folder, _, module = source.rpartition("/")
        assert f"{folder}/__pycache__/{module[:-3]}.cpython-311.pyc" in names
    pyc = zipfile.ZipFile(built.zip_path).read("idp_authorizer/__pycache__/handler.cpython-311.pyc")
    assert int.from_bytes(pyc[4:8], "little") == 0b01  # PEP 552: hash-based, source not checked
    assert b"/var/task/idp_authorizer/handler.py" in pyc and b"idp-authorizer-lambda-" not in pyc  # reproducible


def test_unpacked_zip_runs_the_handler_in_a_fresh_interpreter(built, dev_idp, tmp_path) -> None:
    task = tmp_path / "task"
    zipfile.ZipFile(built.zip_path).extractall(task)
    env = {
        "IDP_PROVIDER": "oidc",
        "IDP_ISSUER": dev_idp.issuer,
        "IDP_AUDIENCE": "demo-api",
        "IDP_ALLOW_LOOPBACK_HTTP": "true",
        "IDP_LOG_LEVEL": "WARNING",
    }
    # -I: no PYTHON* variables, no user site; -S: no site-packages. Only the unpacked zip is importable.
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-B", "-c", RUN_HANDLER, str(task), dev_idp.mint(scope="read")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    response = json.loads(done.stdout.strip().splitlines()[-1])
    assert response["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    assert response["principalId"] == "user-123"


def test_build_refuses_unknown_targets(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="arch must be one of"):
        package.build("sparc", "3.11", out_dir=tmp_path)
    with pytest.raises(ValueError, match="--with accepts redis, memcached"):
        package.build("x86_64", "3.11", extras=["mongo"], out_dir=tmp_path)
