"""Counts that tests gather as they run (fault scenarios survived, property examples), printed once in
the terminal summary by tests/conftest.py. A count is a report, never a check: tests assert for themselves.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Tally:
    title: str
    """What is counted, e.g. ``"fault scenarios survived"``."""
    itemised: bool = True
    """Print the count of each key, not only the total."""
    counts: Counter[str] = field(default_factory=Counter)

    def line(self, name: str) -> str:
        text = f"[{name}] {sum(self.counts.values())} {self.title}"
        return f"{text}: {dict(sorted(self.counts.items()))}" if self.itemised else text


TALLIES: dict[str, Tally] = {}


def tally(name: str, title: str, *, itemised: bool = True) -> Counter[str]:
    """The counter named ``name`` (one per module), reported at the end of the run if anything was counted."""
    return TALLIES.setdefault(name, Tally(title, itemised)).counts
