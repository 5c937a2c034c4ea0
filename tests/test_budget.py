"""The skill's context budget: measured per file, and the limits hold."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import SKILL_DIR
from rich.console import Console
from skill_factory import copy_with_long_rules

from fenceproof.agents_index import AGENTS_INDEX, AGENTS_INDEX_MAX_CHARS
from fenceproof.budget import (
    DESCRIPTION_MAX_CHARS,
    RULE_MAX_CHARS,
    SKILL_BODY_MAX_CHARS,
    SKILL_MAX_LINES,
    BudgetRow,
    measure,
    render,
)
from fenceproof.index import LINE_MAX_CHARS, SKILL_END, SKILL_START

SKILL_TEXT = (SKILL_DIR / "SKILL.md").read_text(encoding="utf-8")
_, FRONTMATTER, BODY = SKILL_TEXT.split("---\n", 2)
META = yaml.safe_load(FRONTMATTER)
ROWS = measure(SKILL_DIR)


def test_skill_md_is_under_500_lines() -> None:
    assert len(SKILL_TEXT.splitlines()) < SKILL_MAX_LINES


def test_skill_md_body_is_under_8000_characters() -> None:
    assert len(BODY) <= SKILL_BODY_MAX_CHARS


def test_description_is_at_most_500_characters() -> None:
    assert 0 < len(META["description"]) <= DESCRIPTION_MAX_CHARS


@pytest.mark.parametrize("rule", sorted(p.name for p in (SKILL_DIR / "rules").glob("[!_]*.md")))
def test_each_rule_is_at_most_8000_characters(rule: str) -> None:
    assert len((SKILL_DIR / "rules" / rule).read_text(encoding="utf-8")) <= RULE_MAX_CHARS


def test_rows_measure_always_on_cost_body_index_and_every_on_demand_file() -> None:
    always_on, body, index = ROWS[0], ROWS[1], ROWS[2]
    assert (always_on.kind, always_on.chars) == ("always-on", len(META["name"]) + len(META["description"]))
    assert (body.kind, body.chars, body.lines) == ("skill body", len(BODY), len(BODY.splitlines()))
    index_text = (SKILL_DIR / AGENTS_INDEX).read_text(encoding="utf-8")
    assert (index.kind, index.rel, index.chars) == ("always-on index", AGENTS_INDEX, len(index_text))
    assert index.limit == AGENTS_INDEX_MAX_CHARS and not index.over
    on_demand = {
        p.relative_to(SKILL_DIR).as_posix()
        for pattern in ("rules/[!_]*.md", "references/*", "checklists/*", "examples/*", "assets/*")
        for p in SKILL_DIR.glob(pattern)
        if p.is_file()
    }
    assert {r.rel for r in ROWS[3:]} == on_demand
    for row in ROWS[3:]:
        assert row.chars == len((SKILL_DIR / row.rel).read_text(encoding="utf-8"))
        assert row.tokens == -(-row.chars // 4)
        assert not row.over, f"{row.rel} is over its limit"


def test_rows_over_their_limit_are_flagged() -> None:
    assert BudgetRow("rule", "rules/x.md", RULE_MAX_CHARS + 1, 10, RULE_MAX_CHARS).over
    assert not BudgetRow("rule", "rules/x.md", RULE_MAX_CHARS, 10, RULE_MAX_CHARS).over
    assert not BudgetRow("reference", "references/x.md", 10**6, 10).over


def test_report_renders_every_row_with_its_tokens(tmp_path: Path) -> None:
    console = Console(record=True, width=160, file=(tmp_path / "out.txt").open("w"))
    console.print(render(ROWS))
    text = console.export_text()
    assert "characters / 4" in text
    for row in ROWS:
        assert row.rel in text
        assert f"{row.tokens:,}" in text
    activation = ROWS[0].chars + ROWS[1].chars
    assert f"{activation:,}" in text


@pytest.fixture(scope="module")
def twenty_rules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_with_long_rules(SKILL_DIR, tmp_path_factory.mktemp("twenty"), 20)


def test_twenty_long_rules_keep_the_body_under_its_limit(twenty_rules: Path) -> None:
    """With today's hand-written text, 20 rules with long frontmatter still fit: adding rules cannot overflow."""
    index = (twenty_rules / "SKILL.md").read_text(encoding="utf-8").split(SKILL_START)[1].split(SKILL_END)[0]
    lines = [line for line in index.splitlines() if line.startswith("- [")]
    assert len(lines) == 20
    assert max(len(line) for line in lines) <= LINE_MAX_CHARS
    body = measure(twenty_rules)[1]
    assert body.kind == "skill body"
    assert body.chars <= SKILL_BODY_MAX_CHARS, f"{body.chars} > {SKILL_BODY_MAX_CHARS} with 20 rules"


def test_twenty_long_rules_keep_the_always_on_index_under_its_limit(twenty_rules: Path) -> None:
    row = next(r for r in measure(twenty_rules) if r.kind == "always-on index")
    assert row.rel == AGENTS_INDEX
    assert row.chars <= AGENTS_INDEX_MAX_CHARS, f"{row.chars} > {AGENTS_INDEX_MAX_CHARS} with 20 rules"
    text = (twenty_rules / AGENTS_INDEX).read_text(encoding="utf-8")
    for rule in (twenty_rules / "rules").glob("[!_]*.md"):
        assert f"\n- {rule.name}: `" in text, rule.name
