"""Running the instances: spawn one ``load_instance.py`` each, release them together, poll until done.

While they run, the runner samples the IdPs' counters every 50 ms (IdP calls over time), rotates the keys
at ``--rotate-at`` and draws the progress bar (stderr).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from benchmarks.load_authorizer import child_env
from benchmarks.load_config import BENCH_DIR, REPO_ROOT, LoadConfig
from benchmarks.load_schedule import schedule_path
from benchmarks.load_wire import InstanceConfig, InstanceSummary, Slots

API = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod"
ROUTE = "GET /pets"
START_SECONDS = 300
Counters = Callable[[], tuple[int, int, int]]  # discovery, key set, introspection calls so far
Rotate = Callable[[], None]  # publish the next keys


@dataclass
class Series:
    """The runner's samples over time: requests done and IdP calls (cumulative)."""

    t: list[float] = field(default_factory=list)
    done: list[int] = field(default_factory=list)
    discovery: list[int] = field(default_factory=list)
    jwks: list[int] = field(default_factory=list)
    introspection: list[int] = field(default_factory=list)

    def add(self, t: float, done: int, counts: tuple[int, int, int]) -> None:
        self.t.append(t)
        self.done.append(done)
        for values, value in zip((self.discovery, self.jwks, self.introspection), counts, strict=True):
            values.append(value)


@dataclass(frozen=True)
class RunResult:
    summaries: list[InstanceSummary]
    series: Series
    rotated_at: float | None  # seconds since the release
    wall: float  # release to the last request
    problems: list[str]


def instance_config(config: LoadConfig, env: dict[str, str], workdir: Path, index: int) -> InstanceConfig:
    return InstanceConfig(
        index=index,
        instances=config.instances,
        api=API,
        route=ROUTE,
        env=env,
        seed=config.seed,
        idle_ms=config.idle_ms,
        rss_every=max(100, config.requests // config.instances // 200),
        slots=str(workdir / "slots.bin"),
        schedule=str(schedule_path(workdir, index)),
        latency=str(workdir / f"latency-{index}.bin"),
        summary=str(workdir / f"summary-{index}.json"),
    )


def spawn(config: LoadConfig, env: dict[str, str], workdir: Path, files: ExitStack) -> list[subprocess.Popen[bytes]]:
    """Every instance's process; its stdout (the decision log) and stderr go to files in ``workdir``."""
    procs = []
    for index in range(config.instances):
        path = workdir / f"instance-{index}.json"
        path.write_text(json.dumps(instance_config(config, env, workdir, index)))
        stdout: IO[bytes] = files.enter_context(open(workdir / f"log-{index}.log", "wb"))  # noqa: SIM115
        stderr: IO[bytes] = files.enter_context(open(workdir / f"stderr-{index}.txt", "wb"))  # noqa: SIM115
        command = [sys.executable, str(BENCH_DIR / "load_instance.py"), str(path)]
        procs.append(subprocess.Popen(command, stdout=stdout, stderr=stderr, env=child_env({}), cwd=REPO_ROOT))
    return procs


def wait_ready(slots: Slots, procs: list[subprocess.Popen[bytes]]) -> list[str]:
    """Wait until every instance has imported the handler; stop them all if one dies or it takes too long."""
    deadline = time.monotonic() + START_SECONDS
    while not slots.all_ready():
        if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
            for proc in procs:
                if proc.poll() is None:
                    proc.terminate()
            return ["an instance failed to start: run stopped"]
        time.sleep(0.02)
    return []


class Progress:
    """The progress bar on stderr: redrawn every 0.25 s on a terminal, a line every 5 s otherwise."""

    def __init__(self, config: LoadConfig) -> None:
        self.total = config.requests
        self.show = config.progress or (config.progress is None and config.requests >= 5000)
        self.tty, self.shown = sys.stderr.isatty(), 0.0

    def update(self, done: int, seconds: float, counts: tuple[int, int, int]) -> None:
        if not self.show or (time.monotonic() - self.shown < (0.25 if self.tty else 5.0) and done < self.total):
            return
        self.shown = time.monotonic()
        bar = "#" * int(30 * done / self.total)
        d, j, i = counts
        line = f"[{bar:<30}] {done}/{self.total} {done / max(seconds, 1e-9):,.0f} req/s  "
        line += f"idp: discovery {d} jwks {j} introspection {i}"
        print(f"\r{line}" if self.tty else line, end="" if self.tty else "\n", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.show and self.tty:
            print(file=sys.stderr)


def poll(
    config: LoadConfig, slots: Slots, procs: list[subprocess.Popen[bytes]], counters: Counters, rotate: Rotate
) -> tuple[Series, float | None]:
    """Sample every 50 ms from the release until every instance has exited; rotate the keys on time."""
    t0, series, rotated_at, progress = time.time(), Series(), None, Progress(config)
    while any(p.poll() is None for p in procs):
        time.sleep(0.05)
        done = slots.total_done()
        if config.rotate_at and rotated_at is None and done >= config.rotate_at:
            rotate()
            slots.set_rotated()
            rotated_at = time.time() - t0
        counts = counters()
        series.add(time.time() - t0, done, counts)
        progress.update(done, time.time() - t0, counts)
    progress.close()
    return series, rotated_at


def summaries(workdir: Path, procs: list[subprocess.Popen[bytes]]) -> tuple[list[InstanceSummary], list[str]]:
    """Each instance's summary, or why there is none (its exit status and the end of its stderr)."""
    found, problems = [], []
    for index, proc in enumerate(procs):
        path = workdir / f"summary-{index}.json"
        if proc.returncode != 0 or not path.exists():
            err = (workdir / f"stderr-{index}.txt").read_text(errors="replace")[-1500:]
            problems.append(f"instance {index} exited {proc.returncode}: {err.strip()}")
            continue
        found.append(json.loads(path.read_text()))
    return found, problems


def run_instances(
    config: LoadConfig, env: dict[str, str], workdir: Path, counters: Counters, rotate: Rotate
) -> RunResult:
    """Start every instance, release them together, poll progress and IdP counters, collect the summaries."""
    slots = Slots.create(workdir / "slots.bin", config.instances)
    with ExitStack() as files:
        procs = spawn(config, env, workdir, files)
        problems = wait_ready(slots, procs)
        slots.release()
        t0 = time.time()
        series, rotated_at = poll(config, slots, procs, counters, rotate)
        wall = time.time() - t0
    slots.close()
    found, missing = summaries(workdir, procs)
    if found:  # to the last request, not to the processes' exit
        wall = max(s["t_end"] for s in found) - t0
    return RunResult(found, series, rotated_at, wall, problems + missing)
