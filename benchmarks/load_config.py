"""The load test's configuration: one frozen :class:`LoadConfig`, parsed from the command line once.

The presets are the issue's runs; a flag given on the command line overrides its preset value.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
AUTO_EDDSA_ABOVE = 20_000  # RS256 mints at ~1 ms each: above this many JWTs, default to EdDSA

Alg = Literal["RS256", "PS256", "ES256", "EdDSA"]
ALGS: tuple[Alg, ...] = ("RS256", "PS256", "ES256", "EdDSA")

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


@dataclass(frozen=True, slots=True)
class LoadConfig:
    """One run: the workload, the authorizer's extra settings and where the report goes."""

    instances: int
    requests: int
    distinct: int
    zipf: float
    opaque_share: float
    invalid_share: float
    rotate_at: int
    redis: bool
    alg: Alg
    idle_ms: float
    seed: int
    env: tuple[str, ...]  # extra authorizer settings, ``IDP_X=V``
    name: str
    out_dir: Path
    progress: bool | None  # None: on for runs of 5,000 requests or more
    keep: bool
    strict_targets: bool
    smoke: bool
    argv: tuple[str, ...]  # as given, for the report

    @property
    def requests_per_instance(self) -> tuple[int, ...]:
        base, extra = divmod(self.requests, self.instances)
        return tuple(base + (i < extra) for i in range(self.instances))

    def extra_env(self) -> dict[str, str]:
        return {name: value for name, _, value in (pair.partition("=") for pair in self.env)}


def _parser(description: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--preset", choices=sorted(PRESETS), help="the issue's runs (explicit flags override)")
    add("--instances", type=int, default=4, help="simulated Lambda instances (default 4)")
    add("--requests", type=int, default=20_000, help="requests over all instances (default 20000)")
    add("--distinct", type=int, default=1000, help="distinct tokens over all kinds (default 1000)")
    add("--zipf", type=float, default=1.0, help="Zipf exponent of repetition; 0 = walk the pool")
    add("--opaque-share", type=float, default=0.0, help="share of requests with opaque tokens")
    add("--invalid-share", type=float, default=0.02, help="share of requests with invalid tokens")
    add("--rotate-at", type=int, default=0, help="rotate the IdP keys after N requests (0: never)")
    add("--redis", action=argparse.BooleanOptionalAction, default=False, help="shared Redis tier")
    add(
        "--alg",
        choices=ALGS,
        help=f"JWT algorithm (default RS256; EdDSA when more than {AUTO_EDDSA_ABOVE:,} JWTs must be minted)",
    )
    add("--idle-ms", type=float, default=0.2, help="mean idle gap between requests (default 0.2)")
    add("--seed", type=int, default=1)
    add("--env", action="append", default=[], metavar="IDP_X=V", help="extra authorizer setting")
    add("--name", help="report name: NAME.md and NAME.png (default load, load_smoke)")
    add("--out-dir", type=Path, default=RESULTS_DIR, help="where to write (default benchmarks/results)")
    add("--progress", action=argparse.BooleanOptionalAction, default=None, help="progress bar")
    add("--keep", action="store_true", help="keep the work folder (schedules, decision logs)")
    add("--strict-targets", action="store_true", help="exit 1 when a target fails, too")
    add("--smoke", action="store_true", help="tiny run: checks every decision, never timing")
    return parser


def _given(parser: argparse.ArgumentParser, words: Sequence[str]) -> set[str]:
    """The destinations of the flags written on the command line (a preset must not override those)."""
    given = {
        action.dest
        for action in parser._actions
        for option in action.option_strings
        for word in words
        if word == option or word.startswith(option + "=")
    }
    return given | {f"no_{dest}" for dest in given}


def _apply_preset(args: argparse.Namespace, preset: Mapping[str, Any], given: set[str]) -> None:
    for name, value in preset.items():
        if name not in given:
            setattr(args, name, value)
    if args.alg is None:
        jwts = args.distinct * (1 - args.opaque_share - args.invalid_share) * (2 if args.rotate_at else 1)
        args.alg = "EdDSA" if jwts > AUTO_EDDSA_ABOVE else "RS256"


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.instances < 1 or args.requests < args.instances or args.distinct < 1:
        parser.error("need --instances >= 1, --requests >= --instances, --distinct >= 1")
    shares_ok = 0 <= args.opaque_share <= 1 and 0 <= args.invalid_share <= 1
    if not (shares_ok and args.opaque_share + args.invalid_share < 1):
        parser.error("--opaque-share and --invalid-share are fractions that add up to less than 1")


def parse_args(argv: Sequence[str] | None, description: str | None = None) -> LoadConfig:
    """The run's configuration from ``argv`` (``sys.argv[1:]`` when ``None``); ``description`` is ``--help``'s."""
    parser = _parser(description)
    words = tuple(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(words)
    preset = PRESETS["smoke"] if args.smoke else PRESETS.get(args.preset or "", {})
    _apply_preset(args, preset, _given(parser, words))
    _check(parser, args)
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(LoadConfig) if hasattr(args, f.name)}
    values.update(
        alg=cast(Alg, args.alg),
        env=tuple(args.env),
        name=args.name or ("load_smoke" if args.smoke else "load"),
        argv=("benchmarks/load.py", *words),
    )
    return LoadConfig(**values)
