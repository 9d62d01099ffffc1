"""The clock seam: wall-clock epoch seconds, injectable in tests.

Wall-clock time (not monotonic) because token ``exp`` values are wall-clock, and because expiry must
hold across a Lambda freeze, during which no timer of the process fires.
"""

from collections.abc import Callable

Clock = Callable[[], float]
