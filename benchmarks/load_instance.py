"""One simulated Lambda instance for ``benchmarks/load.py``: ``python benchmarks/load_instance.py CONFIG.json``.

Kept apart from the runner so that an instance's memory is the interpreter's and the authorizer's, not the
runner's (no argparse, multiprocessing, schedules or token pools here). It sets the ``IDP_*`` variables,
imports ``idp_authorizer.handler`` (the authorizer is built at import, as in Lambda's init phase), says it
is ready, waits for the runner's go, then calls ``handler(event, None)`` once per schedule line, one at a
time, sleeping an exponential idle gap between requests. Its stdout (the decision log) is a file the runner
gave it. Shared with the runner through a small memory-mapped file of int64 slots: ``[0, N)`` requests done
per instance, ``[N, 2N)`` ready flags, ``2N`` go, ``2N + 1`` keys rotated (switch to the phase-B tokens).
"""

from __future__ import annotations

import array
import fnmatch
import json
import mmap
import os
import random
import resource
import struct
import sys
import time
from pathlib import Path
from typing import Any

KINDS = {"j": "valid JWT", "o": "valid opaque", "x": "invalid JWT", "r": "unknown opaque"}
VALID = ("j", "o")


def status_kib(name: str) -> int:
    """``VmRSS``/``VmHWM`` of this process image; ``ru_maxrss`` where /proc is missing."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def allows(response: Any, arn: str) -> bool:
    """An IAM policy that allows ``arn`` and denies it nowhere."""
    statements = response.get("policyDocument", {}).get("Statement", []) if isinstance(response, dict) else []
    allowed = denied = False
    for statement in statements:
        resources = statement.get("Resource", [])
        hit = any(fnmatch.fnmatchcase(arn, r) for r in ([resources] if isinstance(resources, str) else resources))
        allowed |= hit and statement.get("Effect") == "Allow"
        denied |= hit and statement.get("Effect") == "Deny"
    return allowed and not denied


class Slots:
    def __init__(self, path: str) -> None:
        with open(path, "r+b") as file:
            self._map = mmap.mmap(file.fileno(), 0)

    def get(self, slot: int) -> int:
        value: int = struct.unpack_from("q", self._map, slot * 8)[0]
        return value

    def set(self, slot: int, value: int) -> None:
        struct.pack_into("q", self._map, slot * 8, value)


def main(config_path: str) -> int:
    config = json.loads(Path(config_path).read_text())
    index, instances, arn = config["index"], config["instances"], config["arn"]
    slots = Slots(config["slots"])
    rss_start = status_kib("VmRSS")
    os.environ.update(config["env"])
    started = time.perf_counter()
    from idp_authorizer.handler import handler

    import_ms = (time.perf_counter() - started) * 1e3
    rss_import = status_kib("VmRSS")
    rng = random.Random(config["seed"] * 7919 + index)
    mean_gap = config["idle_ms"] / 1e3
    counts = {"ok": 0, "wrong": 0, "error": 0}
    examples: list[str] = []
    latencies = array.array("q")
    busy_ns = done = 0
    rss_every = max(1, config.get("rss_every", 1000))
    rss_samples: list[tuple[int, int]] = [(0, status_kib("VmRSS"))]
    slots.set(instances + index, 1)
    while not slots.get(2 * instances):
        time.sleep(0.001)
    t_start = time.time()
    with open(config["schedule"]) as schedule, open(config["latency"], "wb") as latency_file:
        for line in schedule:
            fields = line.rstrip("\n").split("\t")
            phase = 2 if len(fields) > 2 and slots.get(2 * instances + 1) else 0
            kind, token = fields[phase], fields[phase + 1]
            event = {"type": "TOKEN", "authorizationToken": "Bearer " + token, "methodArn": arn}
            detail = ""
            t0 = time.perf_counter_ns()
            try:
                response = handler(event, None)
                outcome = "allow" if allows(response, arn) else "other-response"
            except Exception as exc:
                outcome = "unauthorized" if type(exc) is Exception and exc.args == ("Unauthorized",) else "exception"
                detail = f"{type(exc).__name__}: {str(exc)[:200]}"
            elapsed = time.perf_counter_ns() - t0
            latencies.append(elapsed)
            busy_ns += elapsed
            done += 1
            expected = "allow" if kind in VALID else "unauthorized"
            verdict = "ok" if outcome == expected else ("error" if outcome == "exception" else "wrong")
            counts[verdict] += 1
            if verdict != "ok" and len(examples) < 10:
                what = detail if outcome == "exception" else outcome
                examples.append(f"request {done} ({KINDS[kind]}, phase {phase // 2}): expected {expected}, got {what}")
            slots.set(index, done)
            if done % rss_every == 0:
                rss_samples.append((done, status_kib("VmRSS")))
            if len(latencies) >= 8192:
                latencies.tofile(latency_file)
                latencies = array.array("q")
            if mean_gap > 0:
                time.sleep(rng.expovariate(1 / mean_gap))
        latencies.tofile(latency_file)
    t_end = time.time()
    sys.stdout.flush()
    summary = {
        "index": index,
        "requests": done,
        "counts": counts,
        "examples": examples,
        "import_ms": import_ms,
        "rss_start_kib": rss_start,
        "rss_import_kib": rss_import,
        "hwm_kib": status_kib("VmHWM"),
        "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "t_start": t_start,
        "t_end": t_end,
        "busy_ns": busy_ns,
        "rss_samples": rss_samples,
    }
    Path(config["summary"]).write_text(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
