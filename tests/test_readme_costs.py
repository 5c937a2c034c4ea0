"""The README's token-cost table says what `fenceproof.budget.measure` measures on the skill, and its limits
are the ones the tests enforce."""

from __future__ import annotations

import json
import re

from conftest import REPO_ROOT, SKILL_DIR

from fenceproof import budget

NUMBER = r"(\d[\d,]*)"


def table_rows() -> dict[str, str]:
    """The cost table's rows, by the text of their first cell."""
    text = (REPO_ROOT / "README.md").read_text("utf-8")
    section = text.split("### What it costs in tokens", 1)[1].split("\n### ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and not set(cells[0]) <= {"-", " "}:
            rows[cells[0]] = line
    return rows


def numbers(text: str) -> list[int]:
    return [int(n.replace(",", "")) for n in re.findall(NUMBER, text)]


def cost(row: str) -> tuple[list[int], list[int]]:
    """(characters, tokens) quoted in a row's cost cell: one value each, or a range."""
    cell = row.strip().strip("|").split("|")[2]
    chars, _, tokens = cell.partition("characters")
    return numbers(chars), numbers(tokens)


def about(tokens: int, chars: int) -> bool:
    """A quoted "about N tokens" rounds chars / 4 to a round number: within 5% of it."""
    return abs(tokens - chars / budget.CHARS_PER_TOKEN) <= 0.05 * chars / budget.CHARS_PER_TOKEN


def test_cost_table_matches_the_measured_skill() -> None:
    rows = table_rows()
    measured = budget.measure(SKILL_DIR)

    def span(*kinds: str) -> list[int]:
        sizes = [r.chars for r in measured if r.kind in kinds]
        return [min(sizes), max(sizes)] if min(sizes) != max(sizes) else [sizes[0]]

    expected = {
        "`name` + `description`": span("always-on"),
        "`SKILL.md` body": span("skill body"),
        "one rule": span("rule"),
        "a reference, a checklist, the example": span("reference", "checklist", "example"),
    }
    assert set(expected) <= set(rows), f"rows of the README's cost table: {sorted(rows)}"
    for name, chars in expected.items():
        quoted_chars, quoted_tokens = cost(rows[name])
        assert quoted_chars == chars, (
            f"README cost table, {name}: says {quoted_chars} characters, measured {chars}"
        )
        assert len(quoted_tokens) == len(chars)
        for tokens, size in zip(quoted_tokens, chars, strict=True):
            assert about(tokens, size), (
                f"README cost table, {name}: about {tokens} tokens for {size} characters"
            )


def test_cost_table_states_the_enforced_limits_and_version() -> None:
    rows = table_rows()
    limit = {name: numbers(row.strip().strip("|").split("|")[3]) for name, row in rows.items()}
    assert limit["`name` + `description`"] == [budget.DESCRIPTION_MAX_CHARS]
    assert limit["`SKILL.md` body"] == [budget.SKILL_BODY_MAX_CHARS, budget.SKILL_MAX_LINES]
    assert limit["one rule"] == [budget.RULE_MAX_CHARS]
    version = json.loads((SKILL_DIR / "metadata.json").read_text("utf-8"))["version"]
    header = next(
        line for line in (REPO_ROOT / "README.md").read_text("utf-8").splitlines() if "| Cost (" in line
    )
    assert f"Cost (version {version})" in header
