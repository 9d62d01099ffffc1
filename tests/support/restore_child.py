"""A Lambda execution environment in a fresh interpreter, driven by tests/integration/test_initialization.py.

``python restore_child.py import``: import the handler (INIT) and report. ``... snapshot``: then run the
before-snapshot hooks, fork (idp_authorizer.tools.snapstart), and in the child, the restored environment,
decide one REST TOKEN event per token read from stdin. Each report is one ``RESTORE_CHILD {json}`` line
on stdout; the sockets counted are the ones open to the ports in ``RESTORE_CHILD_IDP_PORTS``.
``RESTORE_CHILD_NO_HOOKS_LIBRARY=1`` makes ``snapshot_restore_py`` unimportable first.
"""

from __future__ import annotations

import json
import os
import sys

MARK = "RESTORE_CHILD "
ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/pets"

if os.environ.get("RESTORE_CHILD_NO_HOOKS_LIBRARY"):
    sys.modules["snapshot_restore_py"] = None  # type: ignore[assignment]

from idp_authorizer import handler  # noqa: E402 - INIT, after the block above
from idp_authorizer.aws import initialization  # noqa: E402
from idp_authorizer.tools.snapstart import restore, run_before_snapshot, sockets_to  # noqa: E402

PORTS = [int(port) for port in os.environ["RESTORE_CHILD_IDP_PORTS"].split(",")]


def report(**fields: object) -> None:
    print(MARK + json.dumps(fields), flush=True)


def sockets() -> int:
    return sum(sockets_to(port) for port in PORTS)


def registered() -> bool | None:
    try:
        from snapshot_restore_py import get_after_restore, get_before_snapshot
    except ImportError:
        return None
    before = [func for func, _, _ in get_before_snapshot()]
    after = [func for func, _, _ in get_after_restore()]
    return initialization.before_snapshot in before and initialization.after_restore in after


def decide(token: str) -> str:
    try:
        response = handler.handler({"type": "TOKEN", "authorizationToken": f"Bearer {token}", "methodArn": ARN})
    except Exception as exc:
        return str(exc)
    effects = {statement["Effect"] for statement in response["policyDocument"]["Statement"]}
    return "allow" if effects == {"Allow"} else "deny"


def restored() -> None:
    for line in sys.stdin:
        before = set(sys.modules)
        outcome = decide(line.strip())
        report(phase="decided", outcome=outcome, new_modules=sorted(set(sys.modules) - before), sockets=sockets())


report(phase="imported", hooks=registered(), configured=handler._authorizer is not None, sockets=sockets())
if sys.argv[1] == "snapshot":
    report(phase="snapshot", hooks_run=run_before_snapshot(), sockets=sockets())
    pid = restore()
    if pid == 0:
        restored()
        sys.stdout.flush()
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    sys.exit(os.waitstatus_to_exitcode(status))
