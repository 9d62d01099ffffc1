"""The tiny protocol every Python peer speaks, and the timing loop they share.

A peer is run as ``python -m benchmarks.peers.<name> --alg RS256 --data benchmarks/data [--rounds N]``
(``--tokens``/``--jwks``/``--meta``/``--warmup-tokens``/``--negatives`` override single files). It

1. loads the JWKS and the tokens, builds its verifier and loads the keys (untimed);
2. runs its negative checks: tokens that must be refused (untimed; fails fast if a peer is broken);
3. warms up on tokens that are never timed;
4. times every verification of every timed token individually with ``time.perf_counter_ns``;
5. prints ONE JSON line on stdout (the last line that parses as JSON with an ``impl`` key wins, so
   a product that logs to stdout does not break the protocol)::

     {"impl": ..., "alg": ..., "status": "ok" | "n/a" | "error", "reason": ...,
      "count": N, "rounds": R, "ok": N_verified, "failed": N_refused,
      "negatives": {"tampered_payload": "refused" | "accepted", ...},
      "claims_checked": bool, "samples_ns": [...]}

A verifier is a callable that returns for a good token and raises for a bad one. A peer whose call
answers with a decision (an authorizer's policy) sets ``Verifier.decide``: it is applied to the
returned value OUTSIDE the timed region, and a False there is a refusal too.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_DATA_DIR = Path(__file__).resolve().parent.parent / "data"
ALGORITHMS: tuple[str, ...] = ("RS256", "PS256", "ES256", "EdDSA")


@dataclass(frozen=True)
class BenchInput:
    alg: str
    jwks: dict[str, Any]
    jwks_path: Path
    issuer: str
    audience: str
    tokens: list[str]
    warmup_tokens: list[str]
    negatives: dict[str, str]
    rounds: int
    warmup_passes: int
    warmup_ms: float
    mode: str
    extra: dict[str, Any] = field(default_factory=dict)


class PeerUnavailable(Exception):
    """Raised by a peer's setup when it cannot run here (reported as "n/a: <reason>")."""


@dataclass
class Verifier:
    """``verify(token)`` returns on success and raises on refusal.

    ``decide``: if set, applied to what ``verify`` returned (untimed); False means refused.
    ``claims_checked``: the peer claims iss/aud/exp checks (so it must refuse the claim negatives).
    ``prime``: called with the timed tokens after warm-up, before timing (e.g. to fill a cache).
    ``report``: extra fields for the result record (e.g. how often the JWKS was fetched).
    """

    verify: Callable[[str], Any]
    claims_checked: bool = True
    decide: Callable[[Any], bool] | None = None
    prime: Callable[[Sequence[str]], None] | None = None
    report: Callable[[], dict[str, Any]] | None = None
    close: Callable[[], None] | None = None


def parse_args(argv: Sequence[str] | None, modes: Sequence[str] = ("default",)) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--alg", required=True, choices=ALGORITHMS)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--tokens", type=Path)
    parser.add_argument("--warmup-tokens", type=Path)
    parser.add_argument("--jwks", type=Path)
    parser.add_argument("--meta", type=Path)
    parser.add_argument("--negatives", type=Path)
    parser.add_argument("--count", type=int, default=0, help="use only the first N tokens (0 = all)")
    parser.add_argument("--rounds", type=int, default=1, help="timed passes over the tokens")
    parser.add_argument("--warmup-passes", type=int, default=3, help="least untimed passes over warm-up tokens")
    parser.add_argument(
        "--warmup-ms", type=float, default=1000.0, help="keep warming up (untimed) for at least this long"
    )
    parser.add_argument("--mode", choices=list(modes), default=modes[0])
    parser.add_argument("--summary", action="store_true", help="print a summary instead of all samples")
    return parser.parse_args(argv)


def _read_lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def load_input(args: argparse.Namespace) -> BenchInput:
    data: Path = args.data
    alg: str = args.alg
    meta_path: Path = args.meta or data / "meta.json"
    jwks_path: Path = args.jwks or data / "jwks.json"
    meta = json.loads(meta_path.read_text())
    tokens = _read_lines(args.tokens or data / f"tokens-{alg}.txt")
    if args.count:
        tokens = tokens[: args.count]
    warm_path: Path = args.warmup_tokens or data / f"warmup-{alg}.txt"
    warmup = _read_lines(warm_path) if warm_path.exists() else []
    neg_path: Path = args.negatives or data / f"negatives-{alg}.json"
    negatives = json.loads(neg_path.read_text()) if neg_path.exists() else {}
    return BenchInput(
        alg=alg,
        jwks=json.loads(jwks_path.read_text()),
        jwks_path=jwks_path,
        issuer=str(meta["issuer"]),
        audience=str(meta["audience"]),
        tokens=tokens,
        warmup_tokens=warmup,
        negatives=negatives,
        rounds=max(1, int(args.rounds)),
        warmup_passes=max(0, int(args.warmup_passes)),
        warmup_ms=max(0.0, float(args.warmup_ms)),
        mode=str(args.mode),
        extra={"negative_classes": meta.get("negatives", {})},
    )


def _accepts(verifier: Verifier, token: str) -> bool:
    try:
        result = verifier.verify(token)
    except Exception:
        return False
    return verifier.decide(result) if verifier.decide is not None else True


def run_negatives(verifier: Verifier, negatives: dict[str, str]) -> dict[str, str]:
    return {name: ("accepted" if _accepts(verifier, tok) else "refused") for name, tok in negatives.items()}


def time_pass(
    verify: Callable[[str], Any], tokens: Sequence[str], decide: Callable[[Any], bool] | None = None
) -> tuple[list[int], int]:
    """Time each verification on its own. Returns (samples_ns, number_refused)."""
    clock = time.perf_counter_ns
    samples: list[int] = []
    append = samples.append
    refused = 0
    for tok in tokens:
        t0 = clock()
        try:
            result = verify(tok)
        except Exception:
            append(clock() - t0)
            refused += 1
            continue
        append(clock() - t0)
        if decide is not None and not decide(result):
            refused += 1
    return samples, refused


def warm_up(verifier: Verifier, inp: BenchInput) -> int:
    """Untimed passes over the warm-up tokens (never the timed ones): at least ``warmup_passes`` passes
    and at least ``warmup_ms`` milliseconds. Returns how many verifications it made."""
    if not inp.warmup_tokens:
        return 0
    deadline = time.perf_counter_ns() + int(inp.warmup_ms * 1e6)
    passes = 0
    while passes < inp.warmup_passes or time.perf_counter_ns() < deadline:
        time_pass(verifier.verify, inp.warmup_tokens, verifier.decide)
        passes += 1
    return passes * len(inp.warmup_tokens)


def emit(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def summarize(samples: Sequence[int]) -> dict[str, float]:
    s = sorted(samples)
    n = len(s)
    if n == 0:
        return {}
    return {
        "median_ns": float(s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2),
        "p99_ns": float(s[min(n - 1, int(0.99 * n))]),
        "mean_ns": sum(s) / n,
        "min_ns": float(s[0]),
        "max_ns": float(s[-1]),
    }


def run_peer(
    impl: str,
    setup: Callable[[BenchInput], Verifier],
    argv: Sequence[str] | None = None,
    modes: Sequence[str] = ("default",),
) -> int:
    """Main body of every Python peer. Always prints one JSON line; exit code 0 unless it crashed."""
    args = parse_args(argv, modes)
    base: dict[str, Any] = {"impl": impl, "alg": args.alg, "mode": args.mode, "lang": "python"}
    try:
        inp = load_input(args)
    except (OSError, ValueError, KeyError) as exc:
        emit({**base, "status": "error", "reason": f"cannot read benchmark data: {exc}"})
        return 2
    base.update(count=len(inp.tokens), rounds=inp.rounds)
    try:
        verifier = setup(inp)
    except PeerUnavailable as exc:
        emit({**base, "status": "n/a", "reason": str(exc)})
        return 0
    except Exception as exc:  # the peer exists but cannot even start: an error, not "n/a"
        emit({**base, "status": "error", "reason": f"setup failed: {type(exc).__name__}: {exc}"})
        return 1
    try:
        negatives = run_negatives(verifier, inp.negatives)
        warm_verifications = warm_up(verifier, inp)
        if verifier.prime is not None:
            verifier.prime(inp.tokens)
        gc.collect()
        samples: list[int] = []
        refused = 0
        for _ in range(inp.rounds):
            s, r = time_pass(verifier.verify, inp.tokens, verifier.decide)
            samples.extend(s)
            refused += r
    except Exception as exc:  # a crash is reported, never hidden
        emit({**base, "status": "error", "reason": f"{type(exc).__name__}: {exc}"})
        return 1
    finally:
        if verifier.close is not None:
            verifier.close()
    total = len(inp.tokens) * inp.rounds
    record: dict[str, Any] = {
        **base,
        "status": "ok",
        "ok": total - refused,
        "failed": refused,
        "negatives": negatives,
        "claims_checked": verifier.claims_checked,
        "warmup_verifications": warm_verifications,
        "python": sys.version.split()[0],
    }
    if verifier.report is not None:
        record.update(verifier.report())
    if args.summary:
        record.update(summarize(samples))
    else:
        record["samples_ns"] = samples
    emit(record)
    return 0
