"""What the instances measured: latencies, the decision log matched request by request, RSS over the run."""

from __future__ import annotations

import array
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.load_schedule import Plan
from benchmarks.load_wire import KINDS, InstanceSummary, Kind
from benchmarks.warm_path import percentile

CODE = re.compile(r'"code":"([^"]*)"')
DECISION_LOGGER = '"logger":"idp_authorizer.decision"'
KIND_OF: dict[int, Kind] = {ord(kind): kind for kind in KINDS}  # the schedule's kinds are stored as bytes


@dataclass
class Decisions:
    """From the decision logs, matched request by request with the schedule (same order per instance)."""

    lines: int = 0
    hits: dict[Kind, list[int]] = field(default_factory=lambda: {k: [0, 0] for k in KINDS})  # [hits, total]
    latency_hit: list[int] = field(default_factory=list)
    latency_miss: list[int] = field(default_factory=list)
    codes: dict[tuple[Kind, str], int] = field(default_factory=dict)  # (kind, reason code) -> requests
    aligned: bool = True

    def add(self, kind: Kind, hit: bool, ns: int, code: str) -> None:
        self.codes[kind, code] = self.codes.get((kind, code), 0) + 1
        counter = self.hits[kind]
        counter[0] += hit
        counter[1] += 1
        (self.latency_hit if hit else self.latency_miss).append(ns)


def read_latencies(path: Path) -> array.array[int]:
    latencies = array.array("q")
    raw = path.read_bytes()
    latencies.frombytes(raw[: len(raw) // 8 * 8])
    return latencies


def read_log(path: Path) -> tuple[list[bool], list[str]]:
    """``cache_hit`` and the reason code of every decision line, in order."""
    hits, codes = [], []
    with open(path, errors="replace") as log:
        for line in log:
            if DECISION_LOGGER in line:
                hits.append('"cache_hit":true' in line)
                code = CODE.search(line)
                codes.append(code[1] if code else "?")
    return hits, codes


def read_decisions(workdir: Path, plan: Plan, summaries: list[InstanceSummary]) -> tuple[Decisions, list[int]]:
    """The decisions by kind, and every latency (ns, sorted)."""
    decisions = Decisions()
    everything: list[int] = []
    for summary in summaries:
        index = summary["index"]
        latencies = read_latencies(workdir / f"latency-{index}.bin")
        everything.extend(latencies)
        kinds = plan.kinds_by_instance[index]
        hits, codes = read_log(workdir / f"log-{index}.log")
        decisions.lines += len(hits)
        if len(hits) != len(kinds) or len(latencies) != len(kinds):
            decisions.aligned = False
            continue
        for kind, hit, ns, code in zip(kinds, hits, latencies, codes, strict=True):
            decisions.add(KIND_OF[kind], hit, ns, code)
    for values in (everything, decisions.latency_hit, decisions.latency_miss):
        values.sort()
    return decisions, everything


def rss_course(summary: InstanceSummary | None) -> str:
    """``VmRSS`` at a few points of the run: does memory level off (a bound) or keep growing (a leak)?"""
    samples = summary["rss_samples"] if summary else []
    if len(samples) < 2:
        return "n/a"
    last = samples[-1][0]
    points = []
    for fraction in (0.0, 0.1, 0.25, 0.5, 0.75, 1.0):
        done, kib = min(samples, key=lambda sample: abs(sample[0] - fraction * last))
        points.append(f"{kib / 1024:.1f} MiB after {done:,}")
    return ", ".join(points)


def us(ns: float) -> str:
    return "n/a" if math.isnan(ns) else f"{ns / 1e3:,.1f}"


def pcts(values: Sequence[int]) -> str:
    """p50 / p99 / p99.9 of sorted ``values``, in µs."""
    return " / ".join(us(percentile(values, q)) for q in (0.5, 0.99, 0.999))
