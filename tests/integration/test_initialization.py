"""Initialization off the request path (issue 14): prefetch by initialization type and the SnapStart hooks.

Each environment is a fresh interpreter (tests/support/restore_child.py) importing the real handler; a
SnapStart restore is simulated by forking it after the before-snapshot hooks ran. The IdPs are dev IdPs
in this process, which count requests and the connections they came on; the child counts its own
sockets to them in /proc.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fault_server import DISCOVERY as FAULT_DISCOVERY
from fault_server import FaultServer, hang

from idp_authorizer.tools.devidp import DevIdp

SCRIPT = Path(__file__).resolve().parents[1] / "support" / "restore_child.py"
MARK = "RESTORE_CHILD "
TIMEOUT = 60.0
DISCOVERY = "/.well-known/openid-configuration"
JWKS = "/.well-known/jwks.json"
ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/pets"

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork and /proc")


class Child:
    """One environment: its reports in order, the other stdout lines (logs) kept apart."""

    def __init__(self, mode: str, env: dict[str, str], ports: list[int]) -> None:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("IDP_", "AWS_LAMBDA_"))}
        self.proc = subprocess.Popen(
            [sys.executable, str(SCRIPT), mode],
            env={**base, **env, "RESTORE_CHILD_IDP_PORTS": ",".join(map(str, ports))},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.logs: list[str] = []
        self._reports: queue.Queue[dict[str, object] | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(MARK):
                self._reports.put(json.loads(line[len(MARK) :]))
            else:
                self.logs.append(line)
        self._reports.put(None)

    def report(self, phase: str) -> dict[str, object]:
        found = self._reports.get(timeout=TIMEOUT)
        assert found is not None, f"the child ended before {phase!r}: {self.stderr()}"
        assert found["phase"] == phase, found
        return found

    def decide(self, token: str) -> dict[str, object]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(token + "\n")
        self.proc.stdin.flush()
        return self.report("decided")

    def finish(self) -> int:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            return self.proc.wait(TIMEOUT)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()

    def stderr(self) -> str:
        if self.proc.poll() is None:
            return "(still running)"
        assert self.proc.stderr is not None
        return self.proc.stderr.read()[-3000:]


@pytest.fixture
def children() -> Iterator[list[Child]]:
    started: list[Child] = []
    yield started
    for child in started:
        child.finish()


@pytest.fixture
def idps() -> Iterator[tuple[DevIdp, DevIdp]]:
    with DevIdp(audience="api-a") as a, DevIdp(audience="api-b") as b:
        yield a, b


def oidc(idp: DevIdp, **extra: str) -> dict[str, str]:
    return {
        "IDP_PROVIDER": "oidc",
        "IDP_ISSUER": idp.issuer,
        "IDP_AUDIENCE": idp.audience,
        "IDP_ALLOW_LOOPBACK_HTTP": "true",
        "IDP_LOG_LEVEL": "INFO",
        **extra,
    }


def two_providers(a: DevIdp, b: DevIdp) -> dict[str, str]:
    providers = [
        {"name": "a", "provider": "oidc", "issuer": a.issuer, "audience": a.audience},
        {"name": "b", "provider": "jwks", "issuer": b.issuer, "jwks_url": b.jwks_url, "audience": b.audience},
    ]
    return {"IDP_PROVIDERS": json.dumps(providers), "IDP_ALLOW_LOOPBACK_HTTP": "true"}


def start(children: list[Child], mode: str, env: dict[str, str], *idps: DevIdp, **more: str) -> Child:
    child = Child(mode, {**env, **more}, [idp.port for idp in idps])
    children.append(child)
    return child


def test_hooks_are_registered_where_snapshot_restore_py_is_importable(children, idps):
    child = start(children, "import", oidc(idps[0]), idps[0])
    assert child.report("imported") == {"phase": "imported", "hooks": True, "configured": True, "sockets": 0}
    assert child.finish() == 0


def test_without_snapshot_restore_py_the_handler_imports_and_registers_nothing(children, idps):
    child = start(children, "import", oidc(idps[0]), idps[0], RESTORE_CHILD_NO_HOOKS_LIBRARY="1")
    assert child.report("imported") == {"phase": "imported", "hooks": None, "configured": True, "sockets": 0}
    assert child.finish() == 0


@pytest.mark.parametrize(
    ("initialization_type", "prefetch", "fetched"),
    [
        ("provisioned-concurrency", None, True),
        ("on-demand", None, False),
        (None, None, False),
        ("provisioned-concurrency", "false", False),
        ("on-demand", "true", True),
    ],
)
def test_prefetch_at_import_follows_the_initialization_type(children, idps, initialization_type, prefetch, fetched):
    idp = idps[0]
    more = {"AWS_LAMBDA_INITIALIZATION_TYPE": initialization_type} if initialization_type else {}
    more |= {"IDP_PREFETCH": prefetch} if prefetch else {}
    child = start(children, "import", oidc(idp, **more), idp)
    assert child.report("imported")["configured"] is True
    assert child.finish() == 0
    expected = 1 if fetched else 0
    assert (idp.hits[DISCOVERY], idp.hits[JWKS]) == (expected, expected)


def test_before_snapshot_fetches_every_provider_and_a_restore_decides_without_the_idp(children, idps):
    a, b = idps
    tokens = {"a": a.mint(), "b": b.mint()}
    child = start(children, "snapshot", two_providers(a, b), a, b)
    imported = child.report("imported")
    assert imported["configured"] is True and imported["hooks"] is True
    snapshot = child.report("snapshot")
    # Every provider's discovery (oidc) and key set fetched, and no socket to either IdP left open.
    assert snapshot["hooks_run"] == 1 and snapshot["sockets"] == 0
    assert (a.hits[DISCOVERY], a.hits[JWKS], b.hits[DISCOVERY], b.hits[JWKS]) == (1, 1, 0, 1)
    assert any('"prefetched provider a' in line for line in child.logs)
    seen = set(a.connections)

    # The restored environment: the first requests are allowed with no IdP request and nothing imported.
    first = child.decide(tokens["a"])
    assert first == {"phase": "decided", "outcome": "allow", "new_modules": [], "sockets": 0}
    assert child.decide(tokens["b"])["outcome"] == "allow"
    assert (a.hits[DISCOVERY], a.hits[JWKS], b.hits[JWKS]) == (1, 1, 1)

    # A key the snapshot never saw: the key set is fetched again, on a connection opened after the restore.
    a.rotate_keys()
    rotated = child.decide(a.mint())
    assert rotated["outcome"] == "allow"
    assert (a.hits[DISCOVERY], a.hits[JWKS]) == (1, 2)
    assert len(a.connections - seen) == 1
    assert child.finish() == 0


def test_an_idp_down_at_snapshot_time_leaves_a_working_lazy_path(children, idps):
    idp = idps[0]
    token = idp.mint()
    idp.stop()
    child = start(children, "snapshot", oidc(idp), idp)
    assert child.report("imported")["configured"] is True
    assert child.report("snapshot")["sockets"] == 0
    assert any("prefetch of provider oidc failed" in line for line in child.logs)

    idp.start()  # the same port: the IdP is back by the time an environment is restored
    decided = child.decide(token)
    assert decided["outcome"] == "allow"
    assert (idp.hits[DISCOVERY], idp.hits[JWKS]) == (1, 1)
    assert child.finish() == 0


def test_a_prefetch_that_times_out_is_reported_and_the_first_request_fetches(build):
    with FaultServer() as server:
        env = {
            "IDP_PROVIDER": "oidc",
            "IDP_ISSUER": server.issuer,
            "IDP_AUDIENCE": "demo-api",
            "IDP_ALLOW_LOOPBACK_HTTP": "true",
            "IDP_HTTP_TIMEOUT_SECONDS": "0.3",
        }
        authorizer = build(env)
        server.set(FAULT_DISCOVERY, hang(5.0))
        assert authorizer.prefetch(5.0) == {"oidc": "idp_timeout"}
        server.heal()
        event = {"type": "TOKEN", "authorizationToken": f"Bearer {server.mint()}", "methodArn": ARN}
        effects = {s["Effect"] for s in authorizer.handle(event)["policyDocument"]["Statement"]}
        assert effects == {"Allow"}  # no back-off left by the failed prefetch
        assert server.hits[FAULT_DISCOVERY] == 2
