"""An injectable clock for the composition (``build_authorizer(..., clock=...)``) and the cache tiers."""

from __future__ import annotations

import time


class FakeClock:
    """Wall-clock seconds that move only when told to.

    It starts on the next whole second: tokens minted right after carry a whole-second ``iat`` that
    must not lie in this clock's future.
    """

    def __init__(self) -> None:
        self.now = float(int(time.time()) + 1)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
