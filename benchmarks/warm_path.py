"""Warm-path benchmark: every verifier side by side, on the same token files, in one run.

    .venv/bin/python benchmarks/make_tokens.py && .venv/bin/python benchmarks/warm_path.py
    .venv/bin/python benchmarks/warm_path.py --smoke      # decisions only, tiny, never asserts timing

For each algorithm and each implementation it runs ``--procs`` separate processes (interleaved, so slow
drift of the machine hits every implementation alike). Each process loads its keys, refuses the
negative tokens, warms up on tokens that are never timed, then times each verification of each timed
token on its own and prints one JSON line (protocol: ``benchmarks/peers/_common.py``). The runner pools
the samples and prints one markdown table per algorithm, also written to
``benchmarks/results/warm_path.md`` (raw summaries in ``warm_path.json``).

Exit status: 0 when every peer that ran verified every token and refused every negative it must;
1 when any peer mis-verified or crashed ("n/a" peers, e.g. an algorithm a library lacks, are fine).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
DATA_DIR = BENCH_DIR / "data"
RESULTS_DIR = BENCH_DIR / "results"
NODE_DIR = BENCH_DIR / "node"
ALGORITHMS: tuple[str, ...] = ("RS256", "PS256", "ES256", "EdDSA")
FLOOR = "crypto-floor"
AWS = "aws-jwt-verify"
PEER_TIMEOUT_SECONDS = 900
NOISY_SPREAD = 1.2


@dataclass(frozen=True)
class Impl:
    key: str
    label: str
    kind: str  # "python" | "node"
    target: str  # python module or node script
    mode: str | None = None
    checks: str = "sig, iss, aud, exp"
    only_algs: tuple[str, ...] = ()  # run in these algorithms' tables only (empty: every table)


IMPLS: tuple[Impl, ...] = (
    Impl(FLOOR, "crypto floor (cryptography, signature only)", "python", "benchmarks.peers.crypto_floor",
         checks="sig"),
    Impl(AWS, "aws-jwt-verify (Node, `await verify`)", "node", str(NODE_DIR / "bench.mjs")),
    Impl("joserfc", "joserfc (documented)", "python", "benchmarks.peers.joserfc_documented"),
    Impl("pyjwt", "PyJWT (blueprint)", "python", "benchmarks.peers.pyjwt_blueprint"),
    Impl("ours-first-seen", "idp_authorizer handler, first-seen (cache off)", "python",
         "benchmarks.peers.idp_authorizer_handler", mode="first-seen"),
    Impl("ours-repeated", "idp_authorizer handler, repeated (token cache on)", "python",
         "benchmarks.peers.idp_authorizer_handler", mode="repeated"),
    Impl("ours-introspected", "idp_authorizer handler, opaque token, introspection cache hit", "python",
         "benchmarks.peers.idp_authorizer_handler", mode="introspection-hit",
         checks="active, iss, aud, exp (cached)", only_algs=("RS256",)),
)  # fmt: skip


@dataclass
class Cell:
    impl: Impl
    alg: str
    records: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok_records(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("status") == "ok"]

    @property
    def status(self) -> str:
        if any(r.get("status") == "error" for r in self.records):
            return "error"
        if self.ok_records:
            return "ok"
        if any(r.get("status") == "n/a" for r in self.records):
            return "n/a"
        return "error"

    @property
    def reason(self) -> str:
        for want in ("error", "n/a"):
            for r in self.records:
                if r.get("status") == want:
                    return str(r.get("reason", ""))
        return ""

    def samples(self) -> list[int]:
        out: list[int] = []
        for r in self.ok_records:
            out.extend(int(x) for x in r.get("samples_ns", []))
        return out


def median(values: Sequence[float]) -> float:
    s = sorted(values)
    n = len(s)
    if n == 0:
        return float("nan")
    return float(s[n // 2]) if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def percentile(values: Sequence[float], q: float) -> float:
    s = sorted(values)
    if not s:
        return float("nan")
    return float(s[min(len(s) - 1, int(q * len(s)))])


@dataclass(frozen=True)
class Stats:
    median_ns: float
    p99_ns: float
    mean_ns: float
    proc_medians_ns: tuple[float, ...]
    n: int

    @property
    def ops_per_s(self) -> float:
        return 1e9 / self.mean_ns if self.mean_ns else float("nan")


def stats_for(cell: Cell) -> Stats | None:
    samples = cell.samples()
    if not samples:
        return None
    per_proc = tuple(median(r["samples_ns"]) for r in cell.ok_records if r.get("samples_ns"))
    return Stats(
        median_ns=median(samples),
        p99_ns=percentile(samples, 0.99),
        mean_ns=sum(samples) / len(samples),
        proc_medians_ns=per_proc,
        n=len(samples),
    )


# ---------------------------------------------------------------------------------------------------
# Running peers


def _count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    return sum(1 for line in path.read_text().splitlines() if line.strip())


def ensure_tokens(data: Path, count: int, algs: Sequence[str]) -> None:
    """(Re)generate the token files when missing or too short (keys are re-used)."""
    needed = [a for a in algs if _count_lines(data / f"tokens-{a}.txt") < count]
    if not needed and (data / "jwks.json").exists() and (data / "meta.json").exists():
        return
    have = max([_count_lines(data / f"tokens-{a}.txt") for a in ALGORITHMS] + [count])
    print(f"generating {have} tokens per algorithm into {data} ...", file=sys.stderr)
    subprocess.run(
        [sys.executable, str(BENCH_DIR / "make_tokens.py"), "--count", str(have), "--out", str(data)],
        check=True,
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
    )


def ensure_node(install: bool) -> str | None:
    """Returns None when the Node peer can run, else the reason it cannot."""
    node = shutil.which("node")
    if node is None:
        return "node not found on PATH"
    if (NODE_DIR / "node_modules" / "aws-jwt-verify" / "package.json").exists():
        return None
    npm = shutil.which("npm")
    if not install or npm is None:
        return "aws-jwt-verify not installed (run `npm ci` in benchmarks/node)"
    print("installing aws-jwt-verify: npm ci in benchmarks/node ...", file=sys.stderr)
    proc = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        return f"npm ci failed: {proc.stderr.strip()[-300:]}"
    return None


def parse_peer_output(stdout: str) -> dict[str, Any] | None:
    """The last stdout line that is a JSON object with ``impl`` and ``alg`` (products may log)."""
    for raw in reversed(stdout.splitlines()):
        line = raw.strip()
        if not line.startswith("{"):
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict) and "impl" in obj and "alg" in obj:
            return obj
    return None


def peer_command(impl: Impl, alg: str, args: argparse.Namespace) -> list[str]:
    common = [
        "--alg", alg,
        "--data", str(args.data),
        "--count", str(args.count),
        "--rounds", str(args.rounds),
        "--warmup-passes", str(args.warmup_passes),
        "--warmup-ms", str(args.warmup_ms),
    ]  # fmt: skip
    if impl.mode:
        common += ["--mode", impl.mode]
    if impl.kind == "node":
        return [shutil.which("node") or "node", impl.target, *common]
    return [sys.executable, "-m", impl.target, *common]


def run_peer(impl: Impl, alg: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = peer_command(impl, alg, args)
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env["PYTHONPATH"] = str(REPO_ROOT)
    if impl.target.endswith("idp_authorizer_handler") and args.ours_log_level:
        env["IDP_LOG_LEVEL"] = args.ours_log_level
    cpu: int | None = args.cpu

    def pin() -> None:
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})

    try:
        proc = subprocess.run(
            cmd,
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=PEER_TIMEOUT_SECONDS,
            check=False,
            preexec_fn=pin if cpu is not None else None,
        )
    except subprocess.TimeoutExpired:
        return {"impl": impl.key, "alg": alg, "status": "error", "reason": "timed out"}
    record = parse_peer_output(proc.stdout)
    if record is None:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {
            "impl": impl.key,
            "alg": alg,
            "status": "error",
            "reason": f"exit {proc.returncode}, no result line: {' | '.join(tail)[-400:]}",
        }
    if proc.returncode != 0 and record.get("status") == "ok":
        record["status"] = "error"
        record["reason"] = f"exit {proc.returncode}"
    return record


def check_record(cell: Cell, record: dict[str, Any], expected: int, negative_classes: dict[str, Any]) -> None:
    """Correctness: a peer that mis-verifies cannot 'win'."""
    if record.get("status") == "error":
        cell.problems.append(f"crashed: {record.get('reason', '')}")
        return
    if record.get("status") == "n/a" and cell.ok_records:
        cell.problems.append(f"inconsistent: ran in another process, n/a in this one: {record.get('reason', '')}")
    if record.get("status") != "ok":
        return
    ok, failed = int(record.get("ok", -1)), int(record.get("failed", -1))
    if ok != expected or failed != 0:
        cell.problems.append(f"verified {ok}/{expected} valid tokens ({failed} refused)")
    verdicts: dict[str, str] = record.get("negatives", {})
    must_refuse = list(negative_classes.get("signature", []))
    if record.get("claims_checked", True):
        must_refuse += list(negative_classes.get("claims", []))
    for name in must_refuse:
        verdict = verdicts.get(name)
        if verdict != "refused":
            cell.problems.append(f"negative '{name}': {verdict or 'not checked'}")
    if len(record.get("samples_ns", [])) != expected:
        cell.problems.append(f"{len(record.get('samples_ns', []))} samples, expected {expected}")


# ---------------------------------------------------------------------------------------------------
# Reporting


def _us(ns: float) -> str:
    us = ns / 1000
    return f"{us:.1f}" if us < 100 else f"{us:.0f}"


def _ratio(value: float, ref: float | None) -> str:
    if ref is None or ref != ref or not ref:
        return "n/a"
    return f"{value / ref:.2f}x"


def render_alg(alg: str, cells: list[Cell]) -> str:
    stats = {c.impl.key: stats_for(c) for c in cells}
    floor = stats.get(FLOOR)
    aws = stats.get(AWS)
    floor_med = floor.median_ns if floor else None
    aws_med = aws.median_ns if aws else None
    lines = [
        f"### {alg}",
        "",
        "| implementation | checks | median µs | p99 µs | ops/s | spread µs (per-process medians) "
        "| x crypto floor | x aws-jwt-verify |",
        "|---|---|--:|--:|--:|--:|--:|--:|",
    ]
    for cell in cells:
        st = stats[cell.impl.key]
        name = cell.impl.label
        if cell.problems:
            name += " **MIS-VERIFIED**"
        if st is None:
            label = "error" if cell.status == "error" else "n/a"
            reason = cell.reason.replace("|", "/")[:160]
            lines.append(f"| {name} | {cell.impl.checks} | {label}: {reason} | | | | | |")
            continue
        spread = f"{_us(min(st.proc_medians_ns))}-{_us(max(st.proc_medians_ns))}"
        lines.append(
            f"| {name} | {cell.impl.checks} | {_us(st.median_ns)} | {_us(st.p99_ns)} | {st.ops_per_s:,.0f} "
            f"| {spread} | {_ratio(st.median_ns, floor_med)} | {_ratio(st.median_ns, aws_med)} |"
        )
    noisy = [
        f"{c.impl.key} ({_us(min(st.proc_medians_ns))}-{_us(max(st.proc_medians_ns))})"
        for c in cells
        if (st := stats[c.impl.key]) is not None and min(st.proc_medians_ns) * NOISY_SPREAD < max(st.proc_medians_ns)
    ]
    if noisy:
        lines.append("")
        lines.append(
            f"Noisy cells (per-process medians differ by more than {NOISY_SPREAD - 1:.0%}; re-run before "
            f"trusting their ratios): {', '.join(noisy)}"
        )
    lines.append("")
    lines.append("Decisions:")
    for cell in cells:
        if not cell.ok_records:
            continue
        total = sum(int(r.get("ok", 0)) for r in cell.ok_records)
        expected = sum(int(r.get("count", 0)) * int(r.get("rounds", 1)) for r in cell.ok_records)
        verdicts = cell.ok_records[0].get("negatives", {})
        refused = [k for k, v in verdicts.items() if v == "refused"]
        accepted = [k for k, v in verdicts.items() if v != "refused"]
        extra = ""
        fetches = [r["jwks_fetches"] for r in cell.ok_records if "jwks_fetches" in r]
        if fetches:
            extra = f"; JWKS fetched {max(fetches)}x per process"
        calls = [r["introspections"] for r in cell.ok_records if "introspections" in r]
        if calls:
            extra = f"; introspection calls per process {max(calls)} (timed + warm-up + negative tokens, once each)"
        lines.append(
            f"- {cell.impl.key}: {total}/{expected} valid accepted; refused {', '.join(refused) or '-'}; "
            f"accepted {', '.join(accepted) or '-'}{extra}"
            + (f"; PROBLEMS: {'; '.join(cell.problems)}" if cell.problems else "")
        )
    lines.append("")
    return "\n".join(lines)


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _node_version() -> str:
    node = shutil.which("node")
    if node is None:
        return "not found"
    out = subprocess.run([node, "--version"], capture_output=True, text=True, check=False).stdout
    return out.strip()


def _aws_jwt_verify_version() -> str:
    pkg = NODE_DIR / "node_modules" / "aws-jwt-verify" / "package.json"
    return str(json.loads(pkg.read_text())["version"]) if pkg.exists() else "not installed"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _load() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def render_header(args: argparse.Namespace, load_before: str) -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    title = "Warm-path benchmark" + (" (SMOKE: sizes too small, timings meaningless)" if args.smoke else "")
    return "\n".join(
        [
            f"## {title}",
            "",
            f"- run: {now}; {args.count} tokens x {args.rounds} round(s) x {args.procs} process(es) "
            f"per cell; warm-up >= {args.warmup_ms:g} ms on separate tokens"
            + (f"; pinned to CPU {args.cpu}" if args.cpu is not None else "")
            + (f"; idp_authorizer IDP_LOG_LEVEL={args.ours_log_level}" if args.ours_log_level else ""),
            f"- machine: {_cpu_model()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}; "
            f"load average (1/5/15 min) {load_before} before, {_load()} after",
            f"- Python {platform.python_version()}: cryptography {_version('cryptography')}, "
            f"PyJWT {_version('PyJWT')}, joserfc {_version('joserfc')}; "
            f"Node {_node_version()}: aws-jwt-verify {_aws_jwt_verify_version()}",
            "- median/p99: over all timed verifications of the cell (µs per token, one at a time, keys "
            "loaded); ops/s = 1 / mean latency (one thread); spread = lowest-highest per-process median; "
            "x columns = this median / that implementation's median (lower is faster).",
            "",
        ]
    )


# ---------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1000, help="timed tokens per process (default 1000)")
    parser.add_argument("--procs", type=int, default=3, help="processes per cell (default 3)")
    parser.add_argument("--rounds", type=int, default=1, help="timed passes over the tokens per process")
    parser.add_argument("--algs", default=",".join(ALGORITHMS), help="comma-separated subset of algorithms")
    parser.add_argument(
        "--impls", default=",".join(i.key for i in IMPLS), help="comma-separated subset of implementations"
    )
    parser.add_argument("--warmup-ms", type=float, default=1000.0, help="least untimed warm-up per process")
    parser.add_argument("--warmup-passes", type=int, default=3, help="least warm-up passes per process")
    parser.add_argument("--data", type=Path, default=DATA_DIR)
    parser.add_argument("--out", type=Path, help="markdown output (default benchmarks/results/warm_path.md)")
    parser.add_argument("--cpu", type=int, help="pin every peer process to this CPU")
    parser.add_argument(
        "--ours-log-level", help="IDP_LOG_LEVEL for the idp_authorizer peer (default: the product's default)"
    )
    parser.add_argument("--no-npm-install", action="store_true", help="do not run `npm ci` when missing")
    parser.add_argument(
        "--smoke", action="store_true", help="tiny run (20 tokens, 1 process): checks decisions, not timing"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.count = min(args.count, 20)
        args.procs = 1
        args.rounds = 1
        args.warmup_ms = 0.0
        args.warmup_passes = 1
    args.algs = [a.strip() for a in str(args.algs).split(",") if a.strip()]
    for alg in args.algs:
        if alg not in ALGORITHMS:
            parser.error(f"unknown algorithm {alg}")
    known = {i.key for i in IMPLS}
    wanted = [k.strip() for k in str(args.impls).split(",") if k.strip()]
    for key in wanted:
        if key not in known:
            parser.error(f"unknown implementation {key}; choose from {', '.join(sorted(known))}")
    args.impls = [i for i in IMPLS if i.key in wanted]
    if args.out is None:
        args.out = RESULTS_DIR / ("warm_path_smoke.md" if args.smoke else "warm_path.md")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    ensure_tokens(args.data, args.count, args.algs)
    meta = json.loads((args.data / "meta.json").read_text())
    negative_classes: dict[str, Any] = meta.get("negatives", {})
    node_problem = ensure_node(not args.no_npm_install) if any(i.kind == "node" for i in args.impls) else None

    load_before = _load()
    expected = args.count * args.rounds
    cells: dict[tuple[str, str], Cell] = {
        (a, i.key): Cell(i, a) for a in args.algs for i in args.impls if not i.only_algs or a in i.only_algs
    }
    impls: list[Impl] = list(args.impls)
    for alg in args.algs:
        for p in range(args.procs):
            # Interleave, and rotate the order each process round, so drift hits everyone alike.
            shift = p % len(impls)
            for impl in impls[shift:] + impls[:shift]:
                if (alg, impl.key) not in cells:
                    continue
                cell = cells[(alg, impl.key)]
                if cell.records and all(r.get("status") == "n/a" for r in cell.records):
                    continue  # "n/a" does not change from one process to the next
                if impl.kind == "node" and node_problem:
                    rec: dict[str, Any] = {
                        "impl": impl.key,
                        "alg": alg,
                        "status": "n/a",
                        "reason": node_problem,
                    }
                else:
                    rec = run_peer(impl, alg, args)
                cell.records.append(rec)
                check_record(cell, rec, expected, negative_classes)
                st = rec.get("status")
                note = "" if st == "ok" else f": {str(rec.get('reason', ''))[:120]}"
                print(f"  {alg:<6} proc {p + 1}/{args.procs} {impl.key:<16} {st}{note}", file=sys.stderr)

    parts = [render_header(args, load_before)]
    for alg in args.algs:
        parts.append(render_alg(alg, [cells[(alg, i.key)] for i in impls if (alg, i.key) in cells]))
    report = "\n".join(parts)
    print(report)

    out: Path = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report)
    summary = []
    for cell in cells.values():
        st = stats_for(cell)
        summary.append(
            {
                "alg": cell.alg,
                "impl": cell.impl.key,
                "status": cell.status,
                "reason": cell.reason,
                "problems": cell.problems,
                "median_ns": st.median_ns if st else None,
                "p99_ns": st.p99_ns if st else None,
                "mean_ns": st.mean_ns if st else None,
                "proc_medians_ns": list(st.proc_medians_ns) if st else [],
                "samples": st.n if st else 0,
                "negatives": cell.ok_records[0].get("negatives") if cell.ok_records else None,
            }
        )
    out.with_suffix(".json").write_text(json.dumps({"args": _jsonable(args), "cells": summary}, indent=2))
    print(f"\nwritten: {out} and {out.with_suffix('.json')}", file=sys.stderr)

    bad = [c for c in cells.values() if c.problems]
    for cell in bad:
        print(f"FAIL {cell.alg} {cell.impl.key}: {'; '.join(cell.problems)}", file=sys.stderr)
    if bad:
        return 1
    if args.smoke:
        print("smoke: all decisions correct (timings not asserted)", file=sys.stderr)
    return 0


def _jsonable(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in vars(args).items():
        if isinstance(v, Path):
            out[k] = str(v)
        elif isinstance(v, list):
            out[k] = [i.key if isinstance(i, Impl) else i for i in v]
        else:
            out[k] = v
    return out


if __name__ == "__main__":
    raise SystemExit(main())
