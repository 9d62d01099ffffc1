"""A SnapStart restore simulated on one machine, for the benchmark and the tests (never on the Lambda path).

What the Lambda runtime does with the hooks of ``snapshot_restore_py``
(https://docs.aws.amazon.com/lambda/latest/dg/snapstart-runtime-hooks-python.html): at publish time it
runs the before-snapshot hooks in the reverse order of their registration and snapshots the
environment; each restored environment runs the after-restore hooks in the order of registration.
Here the snapshot is :func:`os.fork`: the child stands for a restored environment. Linux only (it
reads ``/proc`` to see which sockets a process holds).
"""

from __future__ import annotations

import os
from pathlib import Path


def run_before_snapshot() -> int:
    """Run the registered before-snapshot hooks as Lambda does; how many ran."""
    from snapshot_restore_py import get_before_snapshot

    hooks = list(get_before_snapshot())
    for func, args, kwargs in reversed(hooks):
        func(*args, **kwargs)
    return len(hooks)


def run_after_restore() -> int:
    """Run the registered after-restore hooks as Lambda does; how many ran."""
    from snapshot_restore_py import get_after_restore

    hooks = list(get_after_restore())
    for func, args, kwargs in hooks:
        func(*args, **kwargs)
    return len(hooks)


def restore() -> int:
    """Fork; the child runs the after-restore hooks and gets ``0``, the parent gets the child's pid."""
    pid = os.fork()
    if pid == 0:
        run_after_restore()
    return pid


def sockets_to(port: int) -> int:
    """How many TCP sockets of this process are connected to ``port`` (any address), from ``/proc``."""
    inodes = set()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if remote_port == port and fields[9] in inodes:
                count += 1
    return count
