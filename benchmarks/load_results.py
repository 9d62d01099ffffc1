"""Everything a finished load run knows, as one frozen value the report, the plot and the targets read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from benchmarks.load_config import LoadConfig
from benchmarks.load_measure import Decisions
from benchmarks.load_runner import RunResult
from benchmarks.load_schedule import Plan
from benchmarks.load_tokens import Pools
from benchmarks.load_wire import Counts, InstanceSummary


@dataclass(frozen=True)
class Setup:
    """What the run could set up here: the authorizer's settings and whether opaque tokens and Redis are on."""

    env: dict[str, str]
    opaque: bool
    cache: Literal["memory", "redis"]
    opaque_note: str
    cache_note: str


@dataclass(frozen=True)
class LoadRun:
    config: LoadConfig
    setup: Setup
    pools: Pools
    plan: Plan
    run: RunResult
    idp_final: tuple[int, int, int]  # discovery, key set, introspection calls
    redis_stats: dict[str, int]
    decisions: Decisions
    latencies: list[int]  # ns, sorted
    load_before: tuple[float, float, float]

    @property
    def summaries(self) -> list[InstanceSummary]:
        return self.run.summaries

    @property
    def counts(self) -> Counts:
        total = {k: sum(s["counts"][k] for s in self.summaries) for k in ("ok", "wrong", "error")}
        return Counts(ok=total["ok"], wrong=total["wrong"], error=total["error"])

    @property
    def errors(self) -> int:
        """Wrong decisions, exceptions and instances that crashed or never started."""
        counts = self.counts
        return counts["wrong"] + counts["error"] + len(self.run.problems)

    @property
    def requests(self) -> int:
        return sum(s["requests"] for s in self.summaries)
