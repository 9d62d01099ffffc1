"""One simulated Lambda instance for ``benchmarks/load.py``: ``python benchmarks/load_instance.py CONFIG.json``.

Kept apart from the runner so that an instance's memory is the interpreter's and the authorizer's, not the
runner's (no argparse, multiprocessing, schedules or token pools here). It sets the ``IDP_*`` variables,
imports ``idp_authorizer.handler`` (the authorizer is built at import, as in Lambda's init phase), says it
is ready, waits for the runner's go, then calls ``handler(event, None)`` once per schedule line, one at a
time, sleeping an exponential idle gap between requests. Its stdout (the decision log) is a file the runner
gave it. It shares the slots of :mod:`benchmarks.load_wire` with the runner (requests done, ready, go,
keys rotated); only the handler call is timed, the check of its answer is not.
"""

from __future__ import annotations

import array
import json
import os
import random
import resource
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, Literal

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: the repository's packages

from benchmarks.load_wire import KINDS, VALID, Counts, InstanceConfig, InstanceSummary, Kind, Slots

Handler = Callable[[dict[str, Any], Any], Any]


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


def allows(response: object, arn: str) -> bool:
    """Whether API Gateway lets ``arn`` through under this IAM policy response (explicit Deny wins)."""
    from idp_authorizer.core import iam

    if not isinstance(response, dict):
        return False
    resources: dict[str, list[str]] = {"Allow": [], "Deny": []}
    for statement in response.get("policyDocument", {}).get("Statement", []):
        listed = statement.get("Resource", [])
        resources.setdefault(statement.get("Effect"), []).extend([listed] if isinstance(listed, str) else listed)
    return iam.allowed(resources["Allow"], resources["Deny"], arn)


def call(handler: Handler, event: dict[str, Any]) -> tuple[object, BaseException | None, int]:
    """The handler's answer or exception, and how long it took (ns): the only timed region."""
    t0 = time.perf_counter_ns()
    try:
        response = handler(event, None)
    except Exception as exc:
        return None, exc, time.perf_counter_ns() - t0
    return response, None, time.perf_counter_ns() - t0


def outcome(response: object, exc: BaseException | None, arn: str) -> tuple[str, str]:
    """``allow``, ``unauthorized`` (exactly ``Exception("Unauthorized")``), ``other-response`` or ``exception``."""
    if exc is None:
        return ("allow" if allows(response, arn) else "other-response"), ""
    exact = type(exc) is Exception and exc.args == ("Unauthorized",)
    return ("unauthorized" if exact else "exception"), f"{type(exc).__name__}: {str(exc)[:200]}"


class Tally:
    """What one instance counts while it serves its schedule (a plain class: no dataclasses import here)."""

    def __init__(self, rss_every: int, latency_file: BinaryIO) -> None:
        self.rss_every = rss_every
        self.latency_file = latency_file
        self.counts = Counts(ok=0, wrong=0, error=0)
        self.examples: list[str] = []
        self.latencies = array.array("q")
        self.busy_ns = self.done = 0
        self.rss_samples: list[tuple[int, int]] = [(0, status_kib("VmRSS"))]

    def record(self, kind: Kind, phase: int, result: tuple[str, str], elapsed: int) -> None:
        self.latencies.append(elapsed)
        self.busy_ns += elapsed
        self.done += 1
        got, detail = result
        expected = "allow" if kind in VALID else "unauthorized"
        verdict: Literal["ok", "wrong", "error"] = "ok"
        if got != expected:
            verdict = "error" if got == "exception" else "wrong"
        self.counts[verdict] += 1
        if verdict != "ok" and len(self.examples) < 10:
            what = detail if got == "exception" else got
            self.examples.append(f"request {self.done} ({KINDS[kind]}, phase {phase}): expected {expected}, got {what}")
        if self.done % self.rss_every == 0:
            self.rss_samples.append((self.done, status_kib("VmRSS")))
        if len(self.latencies) >= 8192:
            self.flush()

    def flush(self) -> None:
        self.latencies.tofile(self.latency_file)
        self.latencies = array.array("q")


def requests(schedule: Iterator[str], slots: Slots) -> Iterator[tuple[Kind, int, str]]:
    """``(kind, phase, token)`` per schedule line; phase 1 (the second pair) once the keys have rotated."""
    for line in schedule:
        fields = line.rstrip("\n").split("\t")
        phase = 1 if len(fields) > 2 and slots.rotated() else 0
        kind: Any = fields[2 * phase]
        yield kind, phase, fields[2 * phase + 1]


def serve(config: InstanceConfig, handler: Handler, slots: Slots, tally: Tally) -> None:
    from idp_authorizer.tools.invoke import build_event

    rng = random.Random(config["seed"] * 7919 + config["index"])
    mean_gap = config["idle_ms"] / 1e3
    with open(config["schedule"]) as schedule:
        for kind, phase, token in requests(schedule, slots):
            event = build_event("rest-token", token, config["route"], api=config["api"])
            response, exc, elapsed = call(handler, event)
            tally.record(kind, phase, outcome(response, exc, event["methodArn"]), elapsed)
            slots.set_done(config["index"], tally.done)
            if mean_gap > 0:
                time.sleep(rng.expovariate(1 / mean_gap))
    tally.flush()


def main(config_path: str) -> int:
    config: InstanceConfig = json.loads(Path(config_path).read_text())
    slots = Slots(Path(config["slots"]), config["instances"])
    rss_start = status_kib("VmRSS")
    os.environ.update(config["env"])
    started = time.perf_counter()
    from idp_authorizer.handler import handler

    import_ms = (time.perf_counter() - started) * 1e3
    rss_import = status_kib("VmRSS")
    with open(config["latency"], "wb") as latency_file:
        tally = Tally(max(1, config["rss_every"]), latency_file)
        slots.set_ready(config["index"])
        while not slots.released():
            time.sleep(0.001)
        t_start = time.time()
        serve(config, handler, slots, tally)
    sys.stdout.flush()
    summary = InstanceSummary(
        index=config["index"],
        requests=tally.done,
        counts=tally.counts,
        examples=tally.examples,
        import_ms=import_ms,
        rss_start_kib=rss_start,
        rss_import_kib=rss_import,
        hwm_kib=status_kib("VmHWM"),
        maxrss_kib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        t_start=t_start,
        t_end=time.time(),
        busy_ns=tally.busy_ns,
        rss_samples=tally.rss_samples,
    )
    Path(config["summary"]).write_text(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
