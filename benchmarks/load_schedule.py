"""The traffic mix: which token each request of each instance sends, written to one schedule file each.

A line is ``kind<TAB>token``, or ``kind<TAB>token<TAB>kind<TAB>token`` with a key rotation (the second
pair is sent once the keys have rotated). Each request draws its kind by the shares, then a token of
that kind with Zipf(``--zipf``) over the pool, or, with ``--zipf 0``, the next one of a shuffled walk.
"""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from benchmarks.load_config import LoadConfig
from benchmarks.load_tokens import Pools, Sizes
from benchmarks.load_wire import KINDS, Kind


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
    """What the schedules hold: requests per kind, the distinct tokens drawn, each instance's kinds in order."""

    kinds: dict[Kind, int] = field(default_factory=dict)
    distinct_used: dict[Kind, set[str]] = field(default_factory=dict)  # phase A and B
    kinds_by_instance: list[bytes] = field(default_factory=list)


def shares(config: LoadConfig, sizes: Sizes) -> dict[Kind, float]:
    """The share of requests of each kind that has a pool (unknown opaque tokens split off the invalid share)."""
    result: dict[Kind, float] = {"o": config.opaque_share if sizes["o"] else 0.0, "x": 0.0, "r": 0.0}
    invalid = config.invalid_share if sizes["x"] + sizes["r"] else 0.0
    result["r"] = invalid * sizes["r"] / max(sizes["x"] + sizes["r"], 1)
    result["x"] = invalid - result["r"]
    result["j"] = max(0.0, 1.0 - sum(result.values()))
    return {k: result[k] for k in ("j", "o", "x", "r") if result[k] > 0 and sizes[k] > 0}


def _write_instance(config: LoadConfig, pools: Pools, sizes: Sizes, index: int, out: TextIO, plan: Plan) -> bytes:
    rng = random.Random(config.seed * 1_000_003 + index)
    mix = shares(config, sizes)
    samplers = {k: Sampler(sizes[k], config.zipf, rng) for k in mix}
    drawn = bytearray()
    for kind in rng.choices(list(mix), list(mix.values()), k=config.requests_per_instance[index]):
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
    return bytes(drawn)


def write_schedules(config: LoadConfig, pools: Pools, sizes: Sizes, workdir: Path) -> Plan:
    """One schedule file per instance, ``schedule-<i>.txt`` in ``workdir``."""
    plan = Plan(distinct_used={k: set() for k in KINDS})
    for index in range(config.instances):
        with open(schedule_path(workdir, index), "w") as out:
            plan.kinds_by_instance.append(_write_instance(config, pools, sizes, index, out, plan))
    return plan


def schedule_path(workdir: Path, index: int) -> Path:
    return workdir / f"schedule-{index}.txt"
