"""Compare what a block printed with the ```` ```output ```` block that shows it.

Lines are compared one by one, trailing spaces ignored, trailing blank lines ignored. ``...`` inside a line
matches any text; a line of only ``...`` matches any number of lines, none included.
"""

from __future__ import annotations

import difflib
import re
from functools import cache

ELLIPSIS = "..."
MAX_DIFF_LINES = 24


def _lines(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


@cache
def _line_pattern(expected: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in expected.split(ELLIPSIS)), re.DOTALL)


def _line_matches(expected: str, actual: str) -> bool:
    if ELLIPSIS not in expected:
        return expected == actual
    return _line_pattern(expected).fullmatch(actual) is not None


def matches(expected_text: str, actual_text: str) -> bool:
    """Whether ``actual_text`` (what was printed) fits ``expected_text`` (the output block)."""
    expected, actual = _lines(expected_text), _lines(actual_text)

    @cache
    def fit(i: int, j: int) -> bool:
        if i == len(expected):
            return j == len(actual)
        if expected[i].strip() == ELLIPSIS:
            return any(fit(i + 1, k) for k in range(j, len(actual) + 1))
        return j < len(actual) and _line_matches(expected[i], actual[j]) and fit(i + 1, j + 1)

    return fit(0, 0)


def diff(expected_text: str, actual_text: str) -> str:
    """A short unified diff, the output block as ``expected`` and what was printed as ``printed``."""
    lines = list(
        difflib.unified_diff(
            _lines(expected_text), _lines(actual_text), "expected", "printed", lineterm="", n=1
        )
    )
    if len(lines) > MAX_DIFF_LINES:
        lines = [*lines[:MAX_DIFF_LINES], f"... ({len(lines) - MAX_DIFF_LINES} more diff lines)"]
    return "\n".join(lines) if lines else "(no printed text)"
