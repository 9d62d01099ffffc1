"""The markdown report of a load run (``benchmarks/results/load.md`` by default)."""

from __future__ import annotations

import datetime as dt
import math
import os
import platform

from benchmarks.load_measure import pcts, rss_course, us
from benchmarks.load_results import LoadRun
from benchmarks.load_targets import evaluate_targets
from benchmarks.load_wire import KINDS


def _header(run: LoadRun) -> list[str]:
    config, plan, total = run.config, run.plan, run.requests
    title = "Load test" + (" (SMOKE: tiny, timings meaningless)" if config.smoke else "")
    la0, la1 = run.load_before, os.getloadavg()
    mix = ", ".join(f"{KINDS[k]} {n:,} ({n / max(total, 1):.1%})" for k, n in plan.kinds.items())
    used = ", ".join(f"{KINDS[k]} {len(v):,}" for k, v in plan.distinct_used.items() if v)
    reasons = ", ".join(f"{k} {v}" for k, v in run.pools.invalid_reasons.items()) or "none"
    rotated_at = run.run.rotated_at
    rotation = f"at {config.rotate_at:,} requests ({rotated_at:.1f} s)" if rotated_at is not None else "off"
    walk = " (0: each instance walks the pool, every token once before repeats)" if config.zipf <= 0 else ""
    server = "the introspection server" if run.setup.opaque else "no introspection server"
    return [
        f"## {title}",
        "",
        f"- run: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; `{' '.join(config.argv)}`",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}; load "
        f"average before {la0[0]:.2f} / {la0[1]:.2f} / {la0[2]:.2f}, after {la1[0]:.2f} / {la1[1]:.2f} / {la1[2]:.2f}",
        f"- {config.instances} instances (spawned processes, sync `handler` one request at a time, idle gap mean "
        f"{config.idle_ms} ms exponential), {total:,} requests, REST TOKEN events, {config.alg} JWTs",
        f"- token mix: {mix}; distinct tokens drawn: {used}; Zipf exponent {config.zipf}{walk}",
        f"- invalid tokens by reason (pool): {reasons}; key rotation {rotation}",
        f"- cache: {run.setup.cache_note}; opaque tokens: {run.setup.opaque_note}",
        f"- IdPs on 127.0.0.1 in the runner's process: dev IdP (discovery + JWKS) and {server}",
    ]


def _timings(run: LoadRun) -> list[str]:
    total, everything, decisions = run.requests, run.latencies, run.decisions
    busy = sum(s["busy_ns"] for s in run.summaries)
    wall = run.run.wall
    return [
        f"| throughput, all instances (wall clock, idle gaps included) | {total / max(wall, 1e-9):,.0f} req/s |",
        f"| service rate per instance (1 / mean handler time) | {total / max(busy / 1e9, 1e-9):,.0f} req/s |",
        f"| wall time | {wall:.1f} s |",
        f"| latency p50 / p99 / p99.9 µs (every request, in the instance) | {pcts(everything)} |",
        f"| latency max µs | {us(float(everything[-1]) if everything else math.nan)} |",
        f"| latency p50 / p99 / p99.9 µs, verdict-cache hits | {pcts(decisions.latency_hit)} |",
        f"| latency p50 / p99 / p99.9 µs, misses (verify, introspect or refuse) | {pcts(decisions.latency_miss)} |",
    ]


def _calls(run: LoadRun) -> list[str]:
    discovery, jwks, introspection = run.idp_final
    out = [
        f"| IdP calls: discovery | {discovery} |",
        f"| IdP calls: key set (JWKS) | {jwks} |",
        f"| IdP calls: introspection | {introspection} |",
    ]
    if stats := run.redis_stats:
        out.append(
            f"| Redis: keyspace hits / misses / commands | {stats.get('keyspace_hits', 0):,} / "
            f"{stats.get('keyspace_misses', 0):,} / {stats.get('total_commands_processed', 0):,} |"
        )
    return out


def _hit_ratios(run: LoadRun) -> list[str]:
    decisions = run.decisions
    all_hits = sum(h for h, _ in decisions.hits.values())
    all_n = sum(n for _, n in decisions.hits.values())
    if not (decisions.aligned and all_n):
        return [
            f"| decision log lines | {decisions.lines:,} for {run.requests:,} requests (not aligned: no hit ratios) |"
        ]
    out = [f"| verdict-cache hit ratio (decision log `cache_hit`) | {all_hits / all_n:.1%} |"]
    out += [f"| hit ratio, {KINDS[kind]} | {hit / n:.1%} of {n:,} |" for kind, (hit, n) in decisions.hits.items() if n]
    return out


def _results(run: LoadRun) -> list[str]:
    counts = run.counts
    right = f"| decisions right / wrong / exceptions | {counts['ok']:,} / {counts['wrong']} / {counts['error']} |"
    return ["", "### Results", "", "| metric | value |", "|---|--:|",
            *_timings(run), *_calls(run), *_hit_ratios(run), right]  # fmt: skip


def _codes(run: LoadRun) -> list[str]:
    codes = run.decisions.codes
    if not codes:
        return []
    out = [
        "",
        "### Decision codes by token kind (decision log)",
        "",
        "| token kind | code | requests |",
        "|---|---|--:|",
    ]
    for (kind, code), n in sorted(codes.items(), key=lambda item: (item[0][0], -item[1])):
        out.append(f"| {KINDS[kind]} | {code} | {n:,} |")
    return out


def _instances(run: LoadRun) -> list[str]:
    out = [
        "",
        "### Per instance",
        "",
        "| instance | requests | handler import ms | RSS at spawn MiB | after import MiB | peak RSS (VmHWM) MiB "
        "| ru_maxrss MiB | wrong | exceptions |",
        "|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for s in run.summaries:
        out.append(
            f"| {s['index']} | {s['requests']:,} | {s['import_ms']:.0f} | {s['rss_start_kib'] / 1024:.1f} "
            f"| {s['rss_import_kib'] / 1024:.1f} | {s['hwm_kib'] / 1024:.1f} | {s['maxrss_kib'] / 1024:.1f} "
            f"| {s['counts']['wrong']} | {s['counts']['error']} |"
        )
    return out


def _memory_notes(run: LoadRun) -> list[str]:
    first = run.summaries[0] if run.summaries else None
    return [
        "",
        "RSS during the run (VmRSS sampled every few hundred requests, instance 0): " + rss_course(first),
        "",
        "RSS at spawn is the harness alone (interpreter + `load_instance.py`, before the handler import); "
        "`ru_maxrss` can include pages inherited from the runner through fork before exec, so the peak is read "
        "from `VmHWM`.",
    ]


def _targets(run: LoadRun) -> list[str]:
    out = [
        "",
        "### Targets (issue 5)",
        "",
        "| target | conditions of this run | measured | verdict |",
        "|---|---|---|---|",
    ]
    out += [f"| {t.name} | {t.condition} | {t.measured} | {t.verdict} |" for t in evaluate_targets(run)]
    return out


def _errors(run: LoadRun) -> list[str]:
    examples = [f"- instance {s['index']}: {e}" for s in run.summaries for e in s["examples"]]
    if not (examples or run.run.problems):
        return []
    return ["", "### Errors", "", *examples, *(f"- {p}" for p in run.run.problems)]


def render(run: LoadRun) -> str:
    sections = (_header, _results, _codes, _instances, _memory_notes, _targets, _errors)
    out = [line for section in sections for line in section(run)]
    out += [
        "",
        "Absolute timings depend on the machine and on what else runs on it; IdP call counts and decisions do not.",
    ]
    return "\n".join([*out, ""])
