"""Load test: N simulated Lambda instances calling the sync handler, against IdPs on 127.0.0.1 that count calls.

    .venv/bin/python benchmarks/load.py --preset targets   # issue 5: 4 instances, 100k requests, 1k tokens, Redis
    .venv/bin/python benchmarks/load.py --preset memory    # issue 5: 200k distinct tokens, default cache bound
    .venv/bin/python benchmarks/load.py --smoke            # tiny; checks every decision, never timing

Each instance is a fresh process (``benchmarks/load_instance.py``) that sets ``IDP_*`` from the run's configuration,
imports ``idp_authorizer.handler`` (building the authorizer, as Lambda's init does) and then calls
``handler(event, None)`` one REST TOKEN event at a time, sleeping a random idle gap between requests (mean
``--idle-ms``, exponential), as one Lambda execution environment serves one request at a time.

Tokens are minted up front by the runner and streamed to each instance from a schedule file (so the
instance's memory is the authorizer's, not the token list's): JWTs from the product's dev IdP (run on a
thread of this process, its ``hits`` counting discovery and key-set requests), opaque tokens registered with
the test introspection server (``tests/introspection_server.py``, also on a thread here) when the build has
the introspection provider, and invalid tokens (expired, bad signature, wrong audience, wrong issuer, and
unknown opaque tokens when opaque tokens are on). Each request's kind is drawn with the configured shares;
which token of that kind with Zipf(``--zipf``) over the pool, or, with ``--zipf 0``, each instance walks
the whole pool in a shuffled order (every token once before any repeats).

``--rotate-at N`` rotates the dev IdP's keys once N requests are done (the old keys leave the key set);
from then on every instance sends tokens signed with the new keys. ``--redis`` starts ``redis-server`` on a
free loopback port and sets ``IDP_CACHE_URL`` when the build has the shared tier.

Every decision is checked: a valid token must get an Allow policy for the ``methodArn``, an invalid one
exactly ``Exception("Unauthorized")``. Anything else is an error, and the exit status is 1. Cache hits come
from the decision log (``IDP_LOG_LEVEL=INFO``, each instance's stdout captured to a file); peak RSS is the
instance's ``VmHWM`` (``ru_maxrss`` alongside). The report goes to ``benchmarks/results/load.md`` and, when
matplotlib is installed (``pip install -r benchmarks/requirements.txt``), a plot to ``load.png``.
"""

from __future__ import annotations

import argparse
import array
import bisect
import contextlib
import datetime as dt
import json
import math
import mmap
import os
import platform
import random
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
AUDIENCE = "load-api"
ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/pets"
DISCOVERY = "/.well-known/openid-configuration"
JWKS = "/.well-known/jwks.json"
CLIENT_ID = "load-bench-authorizer"
CLIENT_SECRET = "load-bench-secret-0123456789"
RSS_TARGET_MIB = 60.0
ISSUE_RUN = {"instances": 4, "requests": 100_000, "distinct": 1000}
ISSUE_MEMORY_DISTINCT = 200_000
AUTO_EDDSA_ABOVE = 20_000  # RS256 mints at ~1 ms each: above this many JWTs, default to EdDSA
KINDS = {"j": "valid JWT", "o": "valid opaque", "x": "invalid JWT", "r": "unknown opaque"}
CODE = re.compile(r'"code":"([^"]*)"')
INVALID_JWT_KINDS = ("expired", "bad_signature", "wrong_audience", "wrong_issuer")

PRESETS: dict[str, dict[str, Any]] = {
    "targets": {
        "instances": 4,
        "requests": 100_000,
        "distinct": 1000,
        "zipf": 1.0,
        "opaque_share": 0.2,
        "invalid_share": 0.02,
        "rotate_at": 50_000,
        "redis": True,
    },
    "memory": {
        "instances": 2,
        "requests": 400_000,
        "distinct": 200_000,
        "zipf": 0.0,
        "opaque_share": 0.0,
        "invalid_share": 0.0,
        "rotate_at": 0,
        "redis": False,
        "alg": "EdDSA",
    },
    "smoke": {
        "instances": 2,
        "requests": 400,
        "distinct": 40,
        "zipf": 1.0,
        "opaque_share": 0.2,
        "invalid_share": 0.1,
        "rotate_at": 200,
        "redis": True,
        "alg": "ES256",
        "idle_ms": 0.0,
    },
}


# ---------------------------------------------------------------------------------------------------
# Servers on 127.0.0.1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Redis:
    """``redis-server`` on a free loopback port, no persistence; stopped by its PID."""

    def __init__(self, binary: str) -> None:
        self.port = free_port()
        argv = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while b"PONG" not in self._command(b"PING\r\n"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _command(self, raw: bytes) -> bytes:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                sock.sendall(raw)
                time.sleep(0.01)
                return sock.recv(1 << 16)
        except OSError:
            return b""

    def stats(self) -> dict[str, int]:
        text = self._command(b"INFO stats\r\n").decode(errors="replace")
        wanted = ("keyspace_hits", "keyspace_misses", "total_commands_processed")
        pairs = (line.split(":", 1) for line in text.splitlines() if ":" in line)
        return {k: int(v) for k, v in pairs if k in wanted and v.strip().isdigit()}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def start_dev_idp() -> Any:
    from idp_authorizer.tools.devidp import DevIdp

    return DevIdp(audience=AUDIENCE).start()


def start_introspection() -> tuple[Any, str | None]:
    """The test introspection server (tests/introspection_server.py), or ``None`` and why not."""
    tests_dir = str(REPO_ROOT / "tests")
    if not (REPO_ROOT / "tests" / "introspection_server.py").exists():
        return None, "tests/introspection_server.py not found"
    if tests_dir not in sys.path:
        sys.path.insert(0, tests_dir)
    try:
        from introspection_server import Client, IntrospectionServer

        server = IntrospectionServer(clients=(Client(CLIENT_ID, CLIENT_SECRET, "client_secret_basic"),)).start()
    except Exception as exc:
        return None, f"tests/introspection_server.py could not be used: {type(exc).__name__}: {exc}"
    return server, None


# ---------------------------------------------------------------------------------------------------
# Configuration and the probe of what this build supports


def authorizer_env(
    args: argparse.Namespace, issuer: str, introspection_url: str | None, cache_url: str | None
) -> dict[str, str]:
    env = {
        "IDP_ALLOW_LOOPBACK_HTTP": "true",
        "IDP_LOG_LEVEL": "INFO",
        "LOAD_IDLE_MS": str(args.idle_ms),
        "LOAD_SEED": str(args.seed),
    }
    jwt_provider = {
        "provider": "oidc",
        "name": "dev-idp",
        "issuer": issuer,
        "audience": AUDIENCE,
        "algorithms": args.alg,
    }
    if introspection_url is None:
        env.update(IDP_PROVIDER="oidc", IDP_ISSUER=issuer, IDP_AUDIENCE=AUDIENCE, IDP_ALGORITHMS=args.alg)
    else:
        opaque = {
            "provider": "introspection",
            "name": "opaque",
            "introspection_url": introspection_url,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "audience": AUDIENCE,
        }
        env["IDP_PROVIDERS"] = json.dumps([jwt_provider, opaque])
    if cache_url is not None:
        env["IDP_CACHE_URL"] = cache_url
    for pair in args.env:
        name, _, value = pair.partition("=")
        env[name] = value
    return env


def child_env(extra: dict[str, str]) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    return {**base, **extra}


def probe(env: dict[str, str]) -> str | None:
    """``None`` if the handler builds from ``env`` in a fresh process, else the logged reason."""
    code = "from idp_authorizer import handler\nprint('PROBE', handler._authorizer is not None)\n"
    proc = subprocess.run(
        [sys.executable, "-c", code], env=child_env(env), capture_output=True, text=True, cwd=REPO_ROOT, check=False
    )
    if "PROBE True" in proc.stdout:
        return None
    for line in proc.stdout.splitlines():
        with contextlib.suppress(ValueError):
            message = json.loads(line).get("message")
            if message:
                return str(message)
    return (proc.stderr.strip().splitlines() or ["handler import failed"])[-1]


# ---------------------------------------------------------------------------------------------------
# Tokens and schedules


@dataclass
class Pools:
    """Token pools per kind; phase B (after the key rotation) has its own JWTs, the same opaque ones."""

    a: dict[str, list[str]] = field(default_factory=dict)
    b: dict[str, list[str]] = field(default_factory=dict)
    invalid_reasons: dict[str, int] = field(default_factory=dict)


def pool_sizes(args: argparse.Namespace, opaque: bool) -> dict[str, int]:
    invalid = round(args.distinct * args.invalid_share) if args.invalid_share > 0 else 0
    invalid = max(invalid, 1) if args.invalid_share > 0 else 0
    n_opaque = max(round(args.distinct * args.opaque_share), 1) if opaque and args.opaque_share > 0 else 0
    unknown_opaque = invalid // 5 if n_opaque else 0
    jwt = max(args.distinct - n_opaque - invalid, 1)
    return {"j": jwt, "o": n_opaque, "x": invalid - unknown_opaque, "r": unknown_opaque}


def _tamper(token: str) -> str:
    """Change one character in the middle of the signature (still valid base64url, different bytes)."""
    head, _, signature = token.rpartition(".")
    i = len(signature) // 2
    return f"{head}.{signature[:i]}{'A' if signature[i] != 'A' else 'B'}{signature[i + 1 :]}"


def mint_jwts(idp: Any, alg: str, count: int, key: Any, label: str, progress: bool) -> list[str]:
    tokens = []
    for i in range(count):
        tokens.append(idp.mint(alg=alg, ttl=7200, sub=f"user-{label}{i}", key=key))
        if progress and (i % 2000 == 0 or i == count - 1):
            print(f"\rminting {label} {alg} tokens {i + 1}/{count}", end="", file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)
    return tokens


def mint_invalid(idp: Any, alg: str, count: int, key: Any) -> tuple[list[str], dict[str, int]]:
    tokens, reasons = [], {}
    for i in range(count):
        reason = INVALID_JWT_KINDS[i % len(INVALID_JWT_KINDS)]
        reasons[reason] = reasons.get(reason, 0) + 1
        if reason == "expired":
            tokens.append(idp.mint(alg=alg, ttl=-120, sub=f"expired-{i}", key=key))
        elif reason == "bad_signature":
            tokens.append(_tamper(idp.mint(alg=alg, ttl=7200, sub=f"tampered-{i}", key=key)))
        elif reason == "wrong_audience":
            tokens.append(idp.mint(alg=alg, ttl=7200, sub=f"aud-{i}", aud="someone-else", key=key))
        else:
            tokens.append(idp.mint(alg=alg, ttl=7200, sub=f"iss-{i}", iss="https://issuer.invalid/", key=key))
    return tokens, reasons


def build_pools(args: argparse.Namespace, idp: Any, introspection: Any, sizes: dict[str, int]) -> Pools:
    import secrets
    import warnings

    from idp_authorizer.tools.devidp import ALG_KEY

    warnings.filterwarnings("ignore", message=".*EdDSA is deprecated.*")
    slot = ALG_KEY[args.alg]
    published = dict(idp.keys)
    pools = Pools()
    progress = sizes["j"] >= 5000
    pools.a["j"] = mint_jwts(idp, args.alg, sizes["j"], published[slot], "a", progress)
    pools.a["x"], pools.invalid_reasons = mint_invalid(idp, args.alg, sizes["x"], published[slot])
    opaque = [introspection.issue(scope="read", ttl=7200, sub=f"opaque-{i}", aud=AUDIENCE) for i in range(sizes["o"])]
    pools.a["o"] = opaque
    pools.a["r"] = [secrets.token_urlsafe(32) for _ in range(sizes["r"])]
    if sizes["r"]:
        pools.invalid_reasons["inactive (unknown opaque)"] = sizes["r"]
    if args.rotate_at:
        idp.rotate_keys()  # new keys, not yet published: mint phase B with them, publish at --rotate-at
        idp.next_keys, idp.keys, idp.retired = dict(idp.keys), published, {}
        pools.b["j"] = mint_jwts(idp, args.alg, sizes["j"], idp.next_keys[slot], "b", progress)
        pools.b["x"], _ = mint_invalid(idp, args.alg, sizes["x"], idp.next_keys[slot])
        pools.b["o"], pools.b["r"] = pools.a["o"], pools.a["r"]  # opaque tokens do not care about JWT keys
    return pools


class Sampler:
    """Index into a pool of ``size``: Zipf(s) over ranks (rank -> index shuffled), or a shuffled walk when s=0."""

    def __init__(self, size: int, s: float, rng: random.Random) -> None:
        self.size, self.rng, self.s = size, rng, s
        self.order = list(range(size))
        rng.shuffle(self.order)
        self.position = 0
        self.cumulative: list[float] = []
        if s > 0:
            total = 0.0
            for rank in range(1, size + 1):
                total += rank**-s
                self.cumulative.append(total)

    def next(self) -> int:
        if self.s <= 0:
            index = self.order[self.position % self.size]
            self.position += 1
            return index
        rank = bisect.bisect_left(self.cumulative, self.rng.random() * self.cumulative[-1])
        return self.order[min(rank, self.size - 1)]


@dataclass
class Plan:
    kinds: dict[str, int] = field(default_factory=dict)  # requests per kind
    distinct_used: dict[str, set[str]] = field(default_factory=dict)  # kind -> tokens drawn (phase a and b)
    kinds_by_instance: list[bytes] = field(default_factory=list)


def write_schedules(args: argparse.Namespace, pools: Pools, sizes: dict[str, int], workdir: Path) -> Plan:
    """One schedule file per instance: ``kind<TAB>token`` (``<TAB>kind<TAB>token`` for phase B) per request."""
    shares = {"o": args.opaque_share if sizes["o"] else 0.0, "x": 0.0, "r": 0.0}
    invalid = args.invalid_share if sizes["x"] + sizes["r"] else 0.0
    shares["r"] = invalid * sizes["r"] / max(sizes["x"] + sizes["r"], 1)
    shares["x"] = invalid - shares["r"]
    shares["j"] = max(0.0, 1.0 - sum(shares.values()))
    kinds = [k for k in ("j", "o", "x", "r") if shares[k] > 0 and sizes[k] > 0]
    weights = [shares[k] for k in kinds]
    plan = Plan(distinct_used={k: set() for k in KINDS})
    per_instance = [
        args.requests // args.instances + (i < args.requests % args.instances) for i in range(args.instances)
    ]
    for index, count in enumerate(per_instance):
        rng = random.Random(args.seed * 1_000_003 + index)
        samplers = {k: Sampler(sizes[k], args.zipf, rng) for k in kinds}
        drawn = bytearray()
        with open(workdir / f"schedule-{index}.txt", "w") as out:
            for kind in rng.choices(kinds, weights, k=count):
                i = samplers[kind].next()
                token = pools.a[kind][i]
                plan.distinct_used[kind].add(token)
                if pools.b:
                    after = pools.b[kind][i]
                    plan.distinct_used[kind].add(after)
                    out.write(f"{kind}\t{token}\t{kind}\t{after}\n")
                else:
                    out.write(f"{kind}\t{token}\n")
                plan.kinds[kind] = plan.kinds.get(kind, 0) + 1
                drawn.append(ord(kind))
        plan.kinds_by_instance.append(bytes(drawn))
    return plan


# ---------------------------------------------------------------------------------------------------
# Running


@dataclass
class Series:
    t: list[float] = field(default_factory=list)
    done: list[int] = field(default_factory=list)
    discovery: list[int] = field(default_factory=list)
    jwks: list[int] = field(default_factory=list)
    introspection: list[int] = field(default_factory=list)


def idp_counts(idp: Any, introspection: Any) -> tuple[int, int, int]:
    calls = int(getattr(introspection, "calls", 0)) if introspection is not None else 0
    return idp.hits.get(DISCOVERY, 0), idp.hits.get(JWKS, 0), calls


def run_instances(
    args: argparse.Namespace, env: dict[str, str], workdir: Path, idp: Any, introspection: Any
) -> tuple[list[dict[str, Any]], Series, float | None, float, list[str]]:
    """Start every instance (``load_instance.py``), release them together, poll progress and IdP counters."""
    n = args.instances
    slots_path = workdir / "slots.bin"
    slots_path.write_bytes(bytes(8 * (2 * n + 2)))
    with open(slots_path, "r+b") as file:
        slots = mmap.mmap(file.fileno(), 0)

    def slot(i: int) -> int:
        value: int = struct.unpack_from("q", slots, 8 * i)[0]
        return value

    procs, files = [], []
    for index in range(n):
        config = {
            "index": index,
            "instances": n,
            "arn": ARN,
            "env": env,
            "seed": args.seed,
            "idle_ms": args.idle_ms,
            "rss_every": max(100, args.requests // args.instances // 200),
            "slots": str(slots_path),
            "schedule": str(workdir / f"schedule-{index}.txt"),
            "latency": str(workdir / f"latency-{index}.bin"),
            "summary": str(workdir / f"summary-{index}.json"),
        }
        config_path = workdir / f"instance-{index}.json"
        config_path.write_text(json.dumps(config))
        stdout, stderr = open(workdir / f"log-{index}.log", "wb"), open(workdir / f"stderr-{index}.txt", "wb")  # noqa: SIM115
        files += [stdout, stderr]
        command = [sys.executable, str(BENCH_DIR / "load_instance.py"), str(config_path)]
        procs.append(subprocess.Popen(command, stdout=stdout, stderr=stderr, env=child_env({}), cwd=REPO_ROOT))
    problems: list[str] = []
    deadline = time.monotonic() + 300
    while not all(slot(n + i) for i in range(n)):
        if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
            problems.append("an instance failed to start: run stopped")
            for proc in procs:
                if proc.poll() is None:
                    proc.terminate()
            break
        time.sleep(0.02)
    struct.pack_into("q", slots, 8 * 2 * n, 1)  # go
    t0 = time.time()
    series, rotated_at = Series(), None
    show = args.progress or (args.progress is None and args.requests >= 5000)
    tty, shown = sys.stderr.isatty(), 0.0
    while any(p.poll() is None for p in procs):
        time.sleep(0.05)
        done = sum(slot(i) for i in range(n))
        if args.rotate_at and rotated_at is None and done >= args.rotate_at:
            idp.retired.update(idp.keys)
            idp.keys = idp.next_keys  # publish the new keys; the old ones leave the key set
            struct.pack_into("q", slots, 8 * (2 * n + 1), 1)
            rotated_at = time.time() - t0
        d, j, i = idp_counts(idp, introspection)
        for name, value in (("t", time.time() - t0), ("done", done), ("discovery", d), ("jwks", j),
                            ("introspection", i)):  # fmt: skip
            getattr(series, name).append(value)
        if show and (time.monotonic() - shown >= (0.25 if tty else 5.0) or done >= args.requests):
            shown = time.monotonic()
            bar = "#" * int(30 * done / args.requests)
            rate = done / max(time.time() - t0, 1e-9)
            line = (
                f"[{bar:<30}] {done}/{args.requests} {rate:,.0f} req/s  idp: discovery {d} jwks {j} introspection {i}"
            )
            print(f"\r{line}" if tty else line, end="" if tty else "\n", file=sys.stderr, flush=True)
    wall = time.time() - t0
    if show and tty:
        print(file=sys.stderr)
    for file in files:
        file.close()
    slots.close()
    summaries = []
    for index, proc in enumerate(procs):
        summary_path = workdir / f"summary-{index}.json"
        if proc.returncode != 0 or not summary_path.exists():
            err = (workdir / f"stderr-{index}.txt").read_text(errors="replace")[-1500:]
            problems.append(f"instance {index} exited {proc.returncode}: {err.strip()}")
            continue
        summaries.append(json.loads(summary_path.read_text()))
    if summaries:  # to the last request, not to the processes' exit
        wall = max(s["t_end"] for s in summaries) - t0
    return summaries, series, rotated_at, wall, problems


# ---------------------------------------------------------------------------------------------------
# Results


def percentile(sorted_values: Sequence[int], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return float(sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))])


@dataclass
class Decisions:
    """From the decision logs, matched request by request with the schedule (same order per instance)."""

    lines: int = 0
    hits: dict[str, list[int]] = field(default_factory=dict)  # kind -> [hits, total]
    latency_hit: list[int] = field(default_factory=list)
    latency_miss: list[int] = field(default_factory=list)
    codes: dict[tuple[str, str], int] = field(default_factory=dict)  # (kind, reason code) -> requests
    aligned: bool = True


def read_decisions(workdir: Path, plan: Plan, summaries: list[dict[str, Any]]) -> tuple[Decisions, list[int]]:
    decisions = Decisions(hits={k: [0, 0] for k in KINDS})
    everything: list[int] = []
    for summary in summaries:
        index = summary["index"]
        latencies = array.array("q")
        raw = (workdir / f"latency-{index}.bin").read_bytes()
        latencies.frombytes(raw[: len(raw) // 8 * 8])
        everything.extend(latencies)
        kinds = plan.kinds_by_instance[index]
        hits, codes = [], []
        with open(workdir / f"log-{index}.log", errors="replace") as log:
            for line in log:
                if '"logger":"idp_authorizer.decision"' in line:
                    hits.append('"cache_hit":true' in line)
                    code = CODE.search(line)
                    codes.append(code[1] if code else "?")
        decisions.lines += len(hits)
        if len(hits) != len(kinds) or len(latencies) != len(kinds):
            decisions.aligned = False
            continue
        for kind, hit, ns, code in zip(kinds, hits, latencies, codes, strict=True):
            key = (chr(kind), code)
            decisions.codes[key] = decisions.codes.get(key, 0) + 1
            counter = decisions.hits[chr(kind)]
            counter[0] += hit
            counter[1] += 1
            (decisions.latency_hit if hit else decisions.latency_miss).append(ns)
    everything.sort()
    decisions.latency_hit.sort()
    decisions.latency_miss.sort()
    return decisions, everything


def rss_course(summary: dict[str, Any]) -> str:
    """``VmRSS`` at a few points of the run: does memory level off (a bound) or keep growing (a leak)?"""
    samples = summary.get("rss_samples") or []
    if len(samples) < 2:
        return "n/a"
    last = samples[-1][0]
    points = []
    for fraction in (0.0, 0.1, 0.25, 0.5, 0.75, 1.0):
        done, kib = min(samples, key=lambda sample: abs(sample[0] - fraction * last))
        points.append(f"{kib / 1024:.1f} MiB after {done:,}")
    return ", ".join(points)


def _us(ns: float) -> str:
    return "n/a" if math.isnan(ns) else f"{ns / 1e3:,.1f}"


def _pcts(values: Sequence[int]) -> str:
    return " / ".join(_us(percentile(values, q)) for q in (0.5, 0.99, 0.999))


@dataclass
class Target:
    name: str
    condition: str
    measured: str
    passed: bool | None  # None: not checked in this run


def evaluate_targets(
    args: argparse.Namespace, ctx: dict[str, Any], summaries: list[dict[str, Any]], errors: int
) -> list[Target]:
    at_issue_size = all(getattr(args, k) == v for k, v in ISSUE_RUN.items()) and ctx["cache"] == "redis"
    size_note = "issue size (4 x 100k, 1k tokens, Redis)" if at_issue_size else "smaller/different run than the issue's"
    discovery, jwks, introspection = ctx["idp_final"]
    rotations = 1 if ctx["rotated_at"] is not None else 0
    targets = [
        Target(
            "discovery fetches <= 1 per instance",
            size_note,
            f"{discovery} for {args.instances} instances",
            discovery <= args.instances,
        ),
        Target(
            "key-set fetches <= 1 per instance (+1 per rotation)",
            size_note,
            f"{jwks} for {args.instances} instances, {rotations} rotation(s)",
            jwks <= args.instances * (1 + rotations),
        ),
    ]
    if ctx["opaque"]:
        distinct_opaque = len(ctx["plan"].distinct_used["o"]) + len(ctx["plan"].distinct_used["r"])
        targets.append(
            Target(
                "introspection calls <= distinct opaque tokens",
                size_note,
                f"{introspection} calls, {distinct_opaque} distinct opaque tokens sent",
                introspection <= distinct_opaque,
            )
        )
    else:
        targets.append(Target("introspection calls <= distinct opaque tokens", "not run", ctx["opaque_note"], None))
    targets.append(Target("zero errors", size_note, f"{errors} errors", errors == 0))
    peak = max((s["hwm_kib"] for s in summaries), default=0) / 1024
    memory_run = args.distinct >= ISSUE_MEMORY_DISTINCT and "IDP_CACHE_MAX_ENTRIES" not in ctx["env"]
    jwt_seen = min(len(ctx["plan"].distinct_used["j"]), max(args.requests // args.instances, 1))
    targets.append(
        Target(
            f"peak RSS <= {RSS_TARGET_MIB:.0f} MiB per instance",
            (
                f"issue size: {args.distinct:,} distinct tokens, default cache bound"
                if memory_run
                else f"{args.distinct:,} distinct tokens (issue: 200,000 with the default bound)"
            ),
            f"{peak:.1f} MiB (max of instances; each saw up to {jwt_seen:,} distinct JWTs)",
            peak <= RSS_TARGET_MIB,
        )
    )
    return targets


def render(args: argparse.Namespace, ctx: dict[str, Any], summaries: list[dict[str, Any]]) -> tuple[str, int]:
    decisions: Decisions = ctx["decisions"]
    everything: list[int] = ctx["latencies"]
    counts = {k: sum(s["counts"][k] for s in summaries) for k in ("ok", "wrong", "error")}
    errors = counts["wrong"] + counts["error"] + len(ctx["problems"])
    total = sum(s["requests"] for s in summaries)
    plan: Plan = ctx["plan"]
    discovery, jwks, introspection = ctx["idp_final"]
    busy = sum(s["busy_ns"] for s in summaries)
    title = "Load test" + (" (SMOKE: tiny, timings meaningless)" if args.smoke else "")
    la0, la1 = ctx["load_before"], os.getloadavg()
    mix = ", ".join(f"{KINDS[k]} {n:,} ({n / max(total, 1):.1%})" for k, n in plan.kinds.items())
    used = ", ".join(f"{KINDS[k]} {len(v):,}" for k, v in plan.distinct_used.items() if v)
    reasons = ", ".join(f"{k} {v}" for k, v in ctx["pools"].invalid_reasons.items()) or "none"
    rotation = f"at {args.rotate_at:,} requests ({ctx['rotated_at']:.1f} s)" if ctx["rotated_at"] is not None else "off"
    out = [
        f"## {title}",
        "",
        f"- run: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; `{' '.join(ctx['argv'])}`",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}; load "
        f"average before {la0[0]:.2f} / {la0[1]:.2f} / {la0[2]:.2f}, after {la1[0]:.2f} / {la1[1]:.2f} / {la1[2]:.2f}",
        f"- {args.instances} instances (spawned processes, sync `handler` one request at a time, idle gap mean "
        f"{args.idle_ms} ms exponential), {total:,} requests, REST TOKEN events, {args.alg} JWTs",
        f"- token mix: {mix}; distinct tokens drawn: {used}; Zipf exponent {args.zipf}"
        + (" (0: each instance walks the pool, every token once before repeats)" if args.zipf <= 0 else ""),
        f"- invalid tokens by reason (pool): {reasons}; key rotation {rotation}",
        f"- cache: {ctx['cache_note']}; opaque tokens: {ctx['opaque_note']}",
        f"- IdPs on 127.0.0.1 in the runner's process: dev IdP (discovery + JWKS) and "
        f"{'the test introspection server' if ctx['opaque'] else 'no introspection server'}",
        "",
        "### Results",
        "",
        "| metric | value |",
        "|---|--:|",
        f"| throughput, all instances (wall clock, idle gaps included) | {total / max(ctx['wall'], 1e-9):,.0f} req/s |",
        f"| service rate per instance (1 / mean handler time) | {total / max(busy / 1e9, 1e-9):,.0f} req/s |",
        f"| wall time | {ctx['wall']:.1f} s |",
        f"| latency p50 / p99 / p99.9 µs (every request, in the instance) | {_pcts(everything)} |",
        f"| latency max µs | {_us(float(everything[-1]) if everything else math.nan)} |",
        f"| latency p50 / p99 / p99.9 µs, verdict-cache hits | {_pcts(decisions.latency_hit)} |",
        f"| latency p50 / p99 / p99.9 µs, misses (verify, introspect or refuse) | {_pcts(decisions.latency_miss)} |",
        f"| IdP calls: discovery | {discovery} |",
        f"| IdP calls: key set (JWKS) | {jwks} |",
        f"| IdP calls: introspection | {introspection} |",
    ]
    if ctx["redis_stats"]:
        stats = ctx["redis_stats"]
        out.append(
            f"| Redis: keyspace hits / misses / commands | {stats.get('keyspace_hits', 0):,} / "
            f"{stats.get('keyspace_misses', 0):,} / {stats.get('total_commands_processed', 0):,} |"
        )
    all_hits = sum(h for h, _ in decisions.hits.values())
    all_n = sum(n for _, n in decisions.hits.values())
    if decisions.aligned and all_n:
        out.append(f"| verdict-cache hit ratio (decision log `cache_hit`) | {all_hits / all_n:.1%} |")
        for kind, (hit, n) in decisions.hits.items():
            if n:
                out.append(f"| hit ratio, {KINDS[kind]} | {hit / n:.1%} of {n:,} |")
    else:
        out.append(f"| decision log lines | {decisions.lines:,} for {total:,} requests (not aligned: no hit ratios) |")
    out.append(f"| decisions right / wrong / exceptions | {counts['ok']:,} / {counts['wrong']} / {counts['error']} |")
    if decisions.codes:
        out += ["", "### Decision codes by token kind (decision log)", "", "| token kind | code | requests |",
                "|---|---|--:|"]  # fmt: skip
        for (kind, code), n in sorted(decisions.codes.items(), key=lambda item: (item[0][0], -item[1])):
            out.append(f"| {KINDS[kind]} | {code} | {n:,} |")
    out += [
        "",
        "### Per instance",
        "",
        "| instance | requests | handler import ms | RSS at spawn MiB | after import MiB | peak RSS (VmHWM) MiB "
        "| ru_maxrss MiB | wrong | exceptions |",
        "|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for s in summaries:
        out.append(
            f"| {s['index']} | {s['requests']:,} | {s['import_ms']:.0f} | {s['rss_start_kib'] / 1024:.1f} "
            f"| {s['rss_import_kib'] / 1024:.1f} | {s['hwm_kib'] / 1024:.1f} | {s['maxrss_kib'] / 1024:.1f} "
            f"| {s['counts']['wrong']} | {s['counts']['error']} |"
        )
    out += [
        "",
        "RSS during the run (VmRSS sampled every few hundred requests, instance 0): "
        + rss_course(summaries[0] if summaries else {}),
        "",
        "RSS at spawn is the harness alone (interpreter + `load_instance.py`, before the handler import); "
        "`ru_maxrss` can include pages inherited from the runner through fork before exec, so the peak is read "
        "from `VmHWM`.",
        "",
        "### Targets (issue 5)",
        "",
        "| target | conditions of this run | measured | verdict |",
        "|---|---|---|---|",
    ]
    for target in evaluate_targets(args, ctx, summaries, errors):
        verdict = "not checked" if target.passed is None else ("PASS" if target.passed else "FAIL")
        out.append(f"| {target.name} | {target.condition} | {target.measured} | {verdict} |")
    examples = [f"- instance {s['index']}: {e}" for s in summaries for e in s["examples"]]
    if examples or ctx["problems"]:
        out += ["", "### Errors", "", *examples, *(f"- {p}" for p in ctx["problems"])]
    out += [
        "",
        "Absolute timings depend on the machine and on what else runs on it; IdP call counts and decisions do not.",
        "",
    ]
    return "\n".join(out), errors


def plot(path: Path, ctx: dict[str, Any]) -> str | None:
    """Latency distribution and IdP calls over time; ``None`` or why no plot was written."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install -r benchmarks/requirements.txt): no plot"
    decisions: Decisions = ctx["decisions"]
    series: Series = ctx["series"]
    fig, (left, middle, right, memory) = plt.subplots(1, 4, figsize=(21, 4.5))
    groups = [("verdict-cache hits", decisions.latency_hit), ("misses", decisions.latency_miss)]
    if not decisions.aligned:
        groups = [("all requests", ctx["latencies"])]
    everything = ctx["latencies"] or [1000]
    low, high = max(min(everything) / 1e3, 0.1), max(everything) / 1e3
    bins = [low * (high / low) ** (i / 60) for i in range(61)] if high > low else 60
    for label, values in groups:
        if values:
            left.hist([v / 1e3 for v in values], bins=bins, alpha=0.6, label=f"{label} ({len(values):,})")
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xlabel("handler latency (µs, log)")
    left.set_ylabel("requests (log)")
    left.set_title("Latency distribution")
    left.legend()
    for name in ("discovery", "jwks"):
        middle.step(series.t, getattr(series, name), where="post", label=name)
    middle.set_xlabel("seconds since start")
    middle.set_ylabel("discovery / key-set fetches (cumulative)")
    middle.set_ylim(bottom=0, top=max([*series.discovery, *series.jwks, 1]) + 1)
    middle.set_title("IdP calls over time")
    handles, labels = middle.get_legend_handles_labels()
    if any(series.introspection):
        twin = middle.twinx()
        twin.step(series.t, series.introspection, where="post", color="tab:green", label="introspection")
        twin.set_ylabel("introspection calls (cumulative)")
        more = twin.get_legend_handles_labels()
        handles, labels = handles + more[0], labels + more[1]
    rates = [0.0] + [
        (b - a) / max(tb - ta, 1e-9)
        for a, b, ta, tb in zip(series.done, series.done[1:], series.t, series.t[1:], strict=False)
    ]
    window = 10
    smooth = [
        sum(rates[max(0, i - window + 1) : i + 1]) / len(rates[max(0, i - window + 1) : i + 1])
        for i in range(len(rates))
    ]
    right.plot(series.t, smooth, color="tab:gray")
    right.set_xlabel("seconds since start")
    right.set_ylabel("requests/s (all instances)")
    right.set_title("Throughput")
    if ctx["rotated_at"] is not None:
        for axis in (middle, right):
            line = axis.axvline(ctx["rotated_at"], color="tab:red", linestyle="--", label="key rotation")
        handles, labels = [*handles, line], [*labels, "key rotation"]
    middle.legend(handles, labels, loc="center right")
    for summary in ctx["summaries"]:
        samples = summary.get("rss_samples") or []
        memory.plot([d for d, _ in samples], [k / 1024 for _, k in samples], label=f"instance {summary['index']}")
    memory.axhline(RSS_TARGET_MIB, color="tab:red", linestyle=":", label=f"{RSS_TARGET_MIB:.0f} MiB target")
    memory.set_xlabel("requests done by the instance")
    memory.set_ylabel("RSS (MiB)")
    memory.set_ylim(bottom=0)
    memory.set_title("Memory per instance")
    memory.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


# ---------------------------------------------------------------------------------------------------
# Main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), help="the issue's runs (explicit flags override)")
    parser.add_argument("--instances", type=int, default=4, help="simulated Lambda instances (default 4)")
    parser.add_argument("--requests", type=int, default=20_000, help="requests over all instances (default 20000)")
    parser.add_argument("--distinct", type=int, default=1000, help="distinct tokens over all kinds (default 1000)")
    parser.add_argument("--zipf", type=float, default=1.0, help="Zipf exponent of repetition; 0 = walk the pool")
    parser.add_argument("--opaque-share", type=float, default=0.0, help="share of requests with opaque tokens")
    parser.add_argument("--invalid-share", type=float, default=0.02, help="share of requests with invalid tokens")
    parser.add_argument("--rotate-at", type=int, default=0, help="rotate the IdP keys after N requests (0: never)")
    parser.add_argument("--redis", action=argparse.BooleanOptionalAction, default=False, help="shared Redis tier")
    parser.add_argument(
        "--alg",
        choices=("RS256", "PS256", "ES256", "EdDSA"),
        help=f"JWT algorithm (default RS256; EdDSA when more than {AUTO_EDDSA_ABOVE:,} JWTs must be minted)",
    )
    parser.add_argument("--idle-ms", type=float, default=0.2, help="mean idle gap between requests (default 0.2)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--env", action="append", default=[], metavar="IDP_X=V", help="extra authorizer setting")
    parser.add_argument("--name", help="report name: NAME.md and NAME.png (default load, load_smoke)")
    parser.add_argument("--out-dir", type=Path, default=RESULTS_DIR, help="where to write (default benchmarks/results)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None, help="progress bar")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (schedules, decision logs)")
    parser.add_argument("--strict-targets", action="store_true", help="exit 1 when a target fails, too")
    parser.add_argument("--smoke", action="store_true", help="tiny run: checks every decision, never timing")
    args = parser.parse_args(argv)
    preset = PRESETS["smoke"] if args.smoke else PRESETS.get(args.preset or "", {})
    words = list(sys.argv[1:] if argv is None else argv)
    given = {
        a.dest for a in parser._actions for o in a.option_strings for w in words if w == o or w.startswith(o + "=")
    }
    given |= {f"no_{d}" for d in given}
    for name, value in preset.items():
        if name not in given:
            setattr(args, name, value)
    if args.alg is None:
        jwts = args.distinct * (1 - args.opaque_share - args.invalid_share) * (2 if args.rotate_at else 1)
        args.alg = "EdDSA" if jwts > AUTO_EDDSA_ABOVE else "RS256"
    if args.instances < 1 or args.requests < args.instances or args.distinct < 1:
        parser.error("need --instances >= 1, --requests >= --instances, --distinct >= 1")
    if not (
        0 <= args.opaque_share <= 1 and 0 <= args.invalid_share <= 1 and args.opaque_share + args.invalid_share < 1
    ):
        parser.error("--opaque-share and --invalid-share are fractions that add up to less than 1")
    args.name = args.name or ("load_smoke" if args.smoke else "load")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    ctx: dict[str, Any] = {
        "argv": ["benchmarks/load.py", *(argv if argv is not None else sys.argv[1:])],
        "load_before": os.getloadavg(),
        "problems": [],
    }
    workdir = Path(tempfile.mkdtemp(prefix="idp-load-"))
    with contextlib.ExitStack() as stack:
        stack.callback(lambda: None if args.keep else shutil.rmtree(workdir, ignore_errors=True))
        idp = start_dev_idp()
        stack.callback(idp.stop)
        introspection, ctx["opaque_note"] = None, "off (--opaque-share 0)"
        if args.opaque_share > 0:
            introspection, why = start_introspection()
            if introspection is not None:
                stack.callback(introspection.stop)
                ctx["opaque_note"] = f"{args.opaque_share:.0%} of requests via the introspection provider"
            else:
                ctx["opaque_note"] = f"SKIPPED: {why}"
        redis = None
        ctx["cache_note"] = "memory:// (per instance)"
        if args.redis:
            binary = shutil.which("redis-server")
            if binary is None:
                ctx["cache_note"] = "memory:// (--redis SKIPPED: redis-server not found)"
            else:
                redis = Redis(binary)
                stack.callback(redis.stop)
        url = introspection.url if introspection is not None else None
        env = authorizer_env(args, idp.issuer, url, redis.url if redis else None)
        if url is not None and (why := probe(authorizer_env(args, idp.issuer, url, None))) is not None:
            ctx["opaque_note"] = f"SKIPPED: this build refuses the introspection provider ({why})"
            introspection = url = None
        if redis is not None and (why := probe(authorizer_env(args, idp.issuer, None, redis.url))) is not None:
            ctx["cache_note"] = f"memory:// (--redis SKIPPED: this build refuses {redis.url}: {why})"
            redis.stop()
            redis = None
        if redis is not None:
            ctx["cache_note"] = f"L1 memory + shared Redis tier at {redis.url}"
        env = authorizer_env(args, idp.issuer, url, redis.url if redis else None)
        if (why := probe(env)) is not None:
            print(f"the authorizer refuses this configuration: {why}", file=sys.stderr)
            return 2
        for note in (ctx["opaque_note"], ctx["cache_note"]):
            if "SKIPPED" in note:
                print(note, file=sys.stderr)
        ctx.update(opaque=introspection is not None, cache="redis" if redis else "memory", env=env)
        sizes = pool_sizes(args, ctx["opaque"])
        ctx["pools"] = build_pools(args, idp, introspection, sizes)
        ctx["plan"] = write_schedules(args, ctx["pools"], sizes, workdir)
        summaries, ctx["series"], ctx["rotated_at"], ctx["wall"], problems = run_instances(
            args, env, workdir, idp, introspection
        )
        ctx["problems"] += problems
        ctx["idp_final"] = idp_counts(idp, introspection)
        ctx["redis_stats"] = redis.stats() if redis is not None else {}
        ctx["decisions"], ctx["latencies"] = read_decisions(workdir, ctx["plan"], summaries)
        ctx["summaries"] = summaries
        if args.keep:
            print(f"work folder kept: {workdir}", file=sys.stderr)
    report, errors = render(args, ctx, summaries)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    png = args.out_dir / f"{args.name}.png"
    why_no_plot = plot(png, ctx)
    report += f"\n{why_no_plot}\n" if why_no_plot else f"\n![latency and IdP calls]({png.name})\n"
    (args.out_dir / f"{args.name}.md").write_text(report)
    print(report)
    print(f"report: {args.out_dir / (args.name + '.md')}" + ("" if why_no_plot else f", plot: {png}"), file=sys.stderr)
    failed_targets = [t for t in evaluate_targets(args, ctx, summaries, errors) if t.passed is False]
    if errors:
        print(f"FAILED: {errors} error(s) (wrong decisions, exceptions or crashed instances)", file=sys.stderr)
        return 1
    if args.strict_targets and failed_targets:
        print(f"FAILED targets: {', '.join(t.name for t in failed_targets)}", file=sys.stderr)
        return 1
    if args.smoke:
        print("smoke: every decision was right (timings not asserted)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
