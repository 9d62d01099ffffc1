"""`pip install .` gives a working handler and providers package, and the handler's import stays lean."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_pip_install_gives_a_working_handler(tmp_path, dev_idp):
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=180,
    )
    assert (target / "idp_authorizer" / "py.typed").exists() and (target / "providers" / "jwks.py").exists()
    assert not (target / "tests").exists()
    script = f"""
import json, os, sys
sys.path.insert(0, {str(target)!r})
os.environ.update(IDP_PROVIDER="oidc", IDP_ISSUER={dev_idp.issuer!r}, IDP_AUDIENCE="demo-api",
                  IDP_ALLOW_LOOPBACK_HTTP="true", IDP_LOG_LEVEL="WARNING")
from idp_authorizer.handler import handler
import providers.jwks, idp_authorizer
assert idp_authorizer.__file__.startswith({str(target)!r}), idp_authorizer.__file__
event = {{"type": "TOKEN", "authorizationToken": "Bearer " + sys.argv[1],
          "methodArn": "arn:aws:execute-api:us-east-1:123456789012:abc/prod/GET/pets"}}
print(json.dumps(handler(event, None)))
"""
    out = subprocess.run(
        [sys.executable, "-I", "-c", script, dev_idp.mint()], check=True, capture_output=True, text=True, timeout=60
    )
    assert json.loads(out.stdout)["policyDocument"]["Statement"][0]["Effect"] == "Allow"


def test_pure_core_does_not_import_io_libraries():
    script = (
        "import sys\n"
        "import idp_authorizer.core.events, idp_authorizer.core.rules, idp_authorizer.core.responses, idp_authorizer.core.outcome\n"
        "import idp_authorizer.core.errors, idp_authorizer.core.principal, idp_authorizer.core.arn\n"
        "print(sorted(m for m in ('aiohttp', 'aiocache', 'joserfc', 'pydantic') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_handler_import_never_loads_cache_clients():
    script = (
        "import os, sys\n"
        "os.environ.update(IDP_PROVIDER='jwks', IDP_ISSUER='https://i.example/', IDP_AUDIENCE='a',"
        " IDP_JWKS_URL='https://i.example/jwks.json')\n"
        "import idp_authorizer.handler\n"
        "assert idp_authorizer.handler._authorizer is not None\n"
        "print(sorted(m for m in ('redis', 'aiomcache', 'aiohttp.web', 'providers.oidc') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_the_s3_key_is_named_for_the_zip_bytes(tmp_path):
    """A stack update deploys new code only when the S3 key changes: the same bytes, the same key; new bytes, a new one."""
    from idp_authorizer.tools.package import content_key, write_zip

    tree = tmp_path / "tree"
    (tree / "idp_authorizer").mkdir(parents=True)
    (tree / "idp_authorizer" / "handler.py").write_text("x = 1\n")
    first, again, changed = (tmp_path / f"{name}.zip" for name in ("first", "again", "changed"))
    write_zip(tree, first)
    write_zip(tree, again)
    (tree / "idp_authorizer" / "handler.py").write_text("x = 2\n")
    write_zip(tree, changed)
    assert content_key(first).removeprefix("first-") == content_key(again).removeprefix("again-")
    assert content_key(first).removeprefix("first-") != content_key(changed).removeprefix("changed-")
    assert content_key(first).startswith("first-") and len(content_key(first)) == len("first-") + 16 + len(".zip")
