"""What the load runner and its instances share: token kinds, the instance's JSON files, the slots.

Kept tiny (no third-party imports): ``load_instance.py`` imports it before the handler, so whatever it
costs counts in an instance's memory. The slots are a memory-mapped file of int64 values: ``[0, N)``
requests done per instance, ``[N, 2N)`` ready flags, ``2N`` go, ``2N + 1`` keys rotated (switch to the
phase-B tokens).
"""

from __future__ import annotations

import mmap
import struct
from pathlib import Path
from typing import Literal, TypedDict

Kind = Literal["j", "o", "x", "r"]
KINDS: dict[Kind, str] = {"j": "valid JWT", "o": "valid opaque", "x": "invalid JWT", "r": "unknown opaque"}
VALID: tuple[Kind, ...] = ("j", "o")


class Counts(TypedDict):
    ok: int
    wrong: int
    error: int


class InstanceConfig(TypedDict):
    """``instance-<i>.json``: what the runner tells one instance."""

    index: int
    instances: int
    api: str  # the REST API stage ARN and the route of every request: ``build_event``'s ``api`` and ``route``
    route: str
    env: dict[str, str]
    seed: int
    idle_ms: float
    rss_every: int
    slots: str
    schedule: str
    latency: str
    summary: str


class InstanceSummary(TypedDict):
    """``summary-<i>.json``: what one instance reports once its schedule is done."""

    index: int
    requests: int
    counts: Counts
    examples: list[str]
    import_ms: float
    rss_start_kib: int
    rss_import_kib: int
    hwm_kib: int
    maxrss_kib: int
    t_start: float
    t_end: float
    busy_ns: int
    rss_samples: list[tuple[int, int]]


class Slots:
    """The shared int64 slots of a run of ``instances`` instances."""

    def __init__(self, path: Path, instances: int) -> None:
        self.instances = instances
        with open(path, "r+b") as file:
            self._map = mmap.mmap(file.fileno(), 0)

    @staticmethod
    def create(path: Path, instances: int) -> Slots:
        path.write_bytes(bytes(8 * (2 * instances + 2)))
        return Slots(path, instances)

    def _get(self, slot: int) -> int:
        value: int = struct.unpack_from("q", self._map, slot * 8)[0]
        return value

    def _set(self, slot: int, value: int) -> None:
        struct.pack_into("q", self._map, slot * 8, value)

    def done(self, index: int) -> int:
        return self._get(index)

    def set_done(self, index: int, done: int) -> None:
        self._set(index, done)

    def total_done(self) -> int:
        return sum(self._get(i) for i in range(self.instances))

    def all_ready(self) -> bool:
        return all(self._get(self.instances + i) for i in range(self.instances))

    def set_ready(self, index: int) -> None:
        self._set(self.instances + index, 1)

    def released(self) -> bool:
        return self._get(2 * self.instances) != 0

    def release(self) -> None:
        self._set(2 * self.instances, 1)

    def rotated(self) -> bool:
        return self._get(2 * self.instances + 1) != 0

    def set_rotated(self) -> None:
        self._set(2 * self.instances + 1, 1)

    def close(self) -> None:
        self._map.close()
