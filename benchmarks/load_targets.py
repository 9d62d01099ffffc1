"""The issue's targets (issue 5), each with the conditions of this run and a verdict."""

from __future__ import annotations

from dataclasses import dataclass

from benchmarks.load_results import LoadRun

ISSUE_RUN = {"instances": 4, "requests": 100_000, "distinct": 1000}
ISSUE_MEMORY_DISTINCT = 200_000
RSS_TARGET_MIB = 60.0


@dataclass(frozen=True)
class Target:
    name: str
    condition: str
    measured: str
    passed: bool | None  # None: not checked in this run

    @property
    def verdict(self) -> str:
        return "not checked" if self.passed is None else ("PASS" if self.passed else "FAIL")


def _size_note(run: LoadRun) -> str:
    config = run.config
    at_issue_size = all(getattr(config, k) == v for k, v in ISSUE_RUN.items()) and run.setup.cache == "redis"
    return "issue size (4 x 100k, 1k tokens, Redis)" if at_issue_size else "smaller/different run than the issue's"


def _idp_targets(run: LoadRun, size_note: str) -> list[Target]:
    discovery, jwks, _ = run.idp_final
    instances = run.config.instances
    rotations = 1 if run.run.rotated_at is not None else 0
    return [
        Target("discovery fetches <= 1 per instance", size_note, f"{discovery} for {instances} instances",
               discovery <= instances),
        Target("key-set fetches <= 1 per instance (+1 per rotation)", size_note,
               f"{jwks} for {instances} instances, {rotations} rotation(s)", jwks <= instances * (1 + rotations)),
    ]  # fmt: skip


def _introspection_target(run: LoadRun, size_note: str) -> Target:
    name = "introspection calls <= distinct opaque tokens"
    if not run.setup.opaque:
        return Target(name, "not run", run.setup.opaque_note, None)
    calls = run.idp_final[2]
    distinct = len(run.plan.distinct_used["o"]) + len(run.plan.distinct_used["r"])
    return Target(name, size_note, f"{calls} calls, {distinct} distinct opaque tokens sent", calls <= distinct)


def _memory_target(run: LoadRun) -> Target:
    config = run.config
    peak = max((s["hwm_kib"] for s in run.summaries), default=0) / 1024
    memory_run = config.distinct >= ISSUE_MEMORY_DISTINCT and "IDP_CACHE_MAX_ENTRIES" not in run.setup.env
    jwt_seen = min(len(run.plan.distinct_used["j"]), max(config.requests // config.instances, 1))
    condition = (
        f"issue size: {config.distinct:,} distinct tokens, default cache bound"
        if memory_run
        else f"{config.distinct:,} distinct tokens (issue: 200,000 with the default bound)"
    )
    measured = f"{peak:.1f} MiB (max of instances; each saw up to {jwt_seen:,} distinct JWTs)"
    return Target(f"peak RSS <= {RSS_TARGET_MIB:.0f} MiB per instance", condition, measured, peak <= RSS_TARGET_MIB)


def evaluate_targets(run: LoadRun) -> list[Target]:
    size_note = _size_note(run)
    errors = Target("zero errors", size_note, f"{run.errors} errors", run.errors == 0)
    return [*_idp_targets(run, size_note), _introspection_target(run, size_note), errors, _memory_target(run)]
