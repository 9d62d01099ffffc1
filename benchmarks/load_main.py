"""The load test's main: start the servers, settle what this build supports, mint, run, report."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.load_authorizer import authorizer_env, probe
from benchmarks.load_config import LoadConfig, parse_args
from benchmarks.load_introspection import IntrospectionServer
from benchmarks.load_measure import read_decisions
from benchmarks.load_plot import plot
from benchmarks.load_report import render
from benchmarks.load_results import LoadRun, Setup
from benchmarks.load_runner import run_instances
from benchmarks.load_schedule import write_schedules
from benchmarks.load_servers import Redis, idp_counts, start_dev_idp, start_introspection
from benchmarks.load_targets import evaluate_targets
from benchmarks.load_tokens import build_pools, pool_sizes, publish_next_keys
from idp_authorizer.tools.devidp import DevIdp


@dataclass
class Servers:
    """The IdPs and Redis of a run (``None``: not started or refused by this build), with notes for the report."""

    idp: DevIdp
    introspection: IntrospectionServer | None
    redis: Redis | None
    load_before: tuple[float, float, float]  # load average when the run began
    opaque_note: str = "off (--opaque-share 0)"
    cache_note: str = "memory:// (per instance)"


def start_servers(config: LoadConfig, stack: contextlib.ExitStack[bool | None]) -> Servers:
    load_before = os.getloadavg()
    idp = start_dev_idp()
    stack.callback(idp.stop)
    servers = Servers(idp, None, None, load_before)
    if config.opaque_share > 0:
        servers.introspection = start_introspection()
        stack.callback(servers.introspection.stop)
        servers.opaque_note = f"{config.opaque_share:.0%} of requests via the introspection provider"
    if config.redis:
        binary = shutil.which("redis-server")
        if binary is None:
            servers.cache_note = "memory:// (--redis SKIPPED: redis-server not found)"
        else:
            servers.redis = Redis(binary)
            stack.callback(servers.redis.stop)
    return servers


def settle(config: LoadConfig, servers: Servers) -> Setup:
    """Drop what this build refuses (the introspection provider, the shared tier), each probed on its own."""
    issuer, introspection, redis = servers.idp.issuer, servers.introspection, servers.redis
    if introspection is not None and (why := probe(authorizer_env(config, issuer, introspection.url, None))):
        servers.opaque_note = f"SKIPPED: this build refuses the introspection provider ({why})"
        servers.introspection = None
    if redis is not None and (why := probe(authorizer_env(config, issuer, None, redis.url))):
        servers.cache_note = f"memory:// (--redis SKIPPED: this build refuses {redis.url}: {why})"
        redis.stop()
        servers.redis = None
    if servers.redis is not None:
        servers.cache_note = f"L1 memory + shared Redis tier at {servers.redis.url}"
    url = servers.introspection.url if servers.introspection is not None else None
    env = authorizer_env(config, issuer, url, servers.redis.url if servers.redis else None)
    opaque, cache_note = servers.introspection is not None, servers.cache_note
    if servers.redis is not None:
        return Setup(env, opaque, "redis", servers.opaque_note, cache_note)
    return Setup(env, opaque, "memory", servers.opaque_note, cache_note)


def execute(config: LoadConfig, servers: Servers, setup: Setup, workdir: Path) -> LoadRun:
    """Mint the pools, write the schedules, run the instances and read what they measured."""
    idp, introspection = servers.idp, servers.introspection
    sizes = pool_sizes(config, setup.opaque)
    pools = build_pools(config, idp, introspection, sizes)
    plan = write_schedules(config, pools, sizes, workdir)
    result = run_instances(
        config, setup.env, workdir, lambda: idp_counts(idp, introspection), lambda: publish_next_keys(idp, pools)
    )
    decisions, latencies = read_decisions(workdir, plan, result.summaries)
    redis_stats = servers.redis.stats() if servers.redis is not None else {}
    final = idp_counts(idp, introspection)
    return LoadRun(config, setup, pools, plan, result, final, redis_stats, decisions, latencies, servers.load_before)


def run(config: LoadConfig) -> LoadRun | str:
    """The finished run, or why the authorizer refused its configuration."""
    workdir = Path(tempfile.mkdtemp(prefix="idp-load-"))
    with contextlib.ExitStack() as stack:
        stack.callback(lambda: None if config.keep else shutil.rmtree(workdir, ignore_errors=True))
        servers = start_servers(config, stack)
        setup = settle(config, servers)
        if (why := probe(setup.env)) is not None:
            return why
        for note in (setup.opaque_note, setup.cache_note):
            if "SKIPPED" in note:
                print(note, file=sys.stderr)
        result = execute(config, servers, setup, workdir)
        if config.keep:
            print(f"work folder kept: {workdir}", file=sys.stderr)
    return result


def write_report(run: LoadRun) -> None:
    out_dir, name = run.config.out_dir, run.config.name
    out_dir.mkdir(parents=True, exist_ok=True)
    png = out_dir / f"{name}.png"
    why_no_plot = plot(png, run)
    report = render(run) + (f"\n{why_no_plot}\n" if why_no_plot else f"\n![latency and IdP calls]({png.name})\n")
    (out_dir / f"{name}.md").write_text(report)
    print(report)
    print(f"report: {out_dir / (name + '.md')}" + ("" if why_no_plot else f", plot: {png}"), file=sys.stderr)


def exit_status(run: LoadRun) -> int:
    failed_targets = [t for t in evaluate_targets(run) if t.passed is False]
    if run.errors:
        print(f"FAILED: {run.errors} error(s) (wrong decisions, exceptions or crashed instances)", file=sys.stderr)
        return 1
    if run.config.strict_targets and failed_targets:
        print(f"FAILED targets: {', '.join(t.name for t in failed_targets)}", file=sys.stderr)
        return 1
    if run.config.smoke:
        print("smoke: every decision was right (timings not asserted)", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None, description: str | None = None) -> int:
    result = run(parse_args(argv, description))
    if isinstance(result, str):
        print(f"the authorizer refuses this configuration: {result}", file=sys.stderr)
        return 2
    write_report(result)
    return exit_status(result)
