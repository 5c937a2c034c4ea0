"""Fence lines the Markdown parser does not see as fences: inside an HTML block or comment, or indented as code.

An agent reading the raw file sees a code block there, yet no block is extracted, so nothing about it would be
run, checked or skipped: each such line is an error naming its file and line.
"""

from __future__ import annotations

import re

from fenceproof.models import Block, ConfigError

_FENCE = re.compile(r"^\s*(`{3,}|~{3,})")


def check_no_stray_fences(text: str, blocks: list[Block], rel: str) -> None:
    covered: set[int] = set()
    for block in blocks:
        closing = block.line + block.code.count("\n") + 1
        covered.update(range(block.line, closing + 1))
    for number, line in enumerate(text.split("\n"), start=1):
        if number not in covered and _FENCE.match(line):
            raise ConfigError(
                rel,
                number,
                "a fence the Markdown parser does not take as one (inside an HTML block or comment, or indented "
                "4 or more spaces): agents still read it as code, so make it a real fenced block "
                "(blank lines around HTML) or remove it",
            )
