"""Pass rates with a 95% interval (Wilson score: sensible at 0/n and n/n, unlike the normal approximation)."""

from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Rate:
    passed: int
    runs: int

    @property
    def rate(self) -> float:
        return self.passed / self.runs if self.runs else 0.0

    @property
    def interval(self) -> tuple[float, float]:
        """The 95% Wilson score interval of the pass rate; (0, 1) when nothing ran."""
        n, p = self.runs, self.rate
        if n == 0:
            return (0.0, 1.0)
        centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
        half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / (1 + Z95**2 / n)
        return (max(0.0, centre - half), min(1.0, centre + half))

    def cell(self) -> str:
        low, high = self.interval
        return f"{self.passed}/{self.runs} {self.rate:.0%} [{low:.0%}-{high:.0%}]"
