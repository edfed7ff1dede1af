"""An injectable wall clock, so tests can pin the timings alerts carry."""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], int]
"""Returns wall time as epoch nanoseconds."""

wall_clock_ns: Clock = time.time_ns
