"""What the skill costs an agent's context: characters and estimated tokens, per thing it may load.

Three tiers, as agents load them: the name and description are always in context (the skill listing); the
SKILL.md body comes in when the skill is activated; rules, references, checklists, examples and assets only when
the agent opens them. Tokens are estimated as characters / 4 (rounded up): the usual rule of thumb for English
prose and code with current tokenizers; no tokenizer is run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from rich.table import Table

from fenceproof.blocks import frontmatter_lines
from fenceproof.corpus import read_frontmatter
from fenceproof.index import rule_files

CHARS_PER_TOKEN = 4
# The limits the tests enforce (and the report shows).
DESCRIPTION_MAX_CHARS = 500
SKILL_MAX_LINES = 500
SKILL_BODY_MAX_CHARS = 8_000
RULE_MAX_CHARS = 8_000
ON_DEMAND_DIRS = ("references", "checklists", "examples", "assets")


@dataclass(frozen=True)
class BudgetRow:
    """One thing an agent may load, and what it costs."""

    kind: str  # "always-on", "skill body", "rule", "reference", "checklist", "example", "asset"
    rel: str  # what it is: a path relative to the skill folder, or "name + description"
    chars: int
    lines: int
    limit: int | None = None  # the character limit, when one applies

    @property
    def tokens(self) -> int:
        return estimate_tokens(self.chars)

    @property
    def over(self) -> bool:
        return self.limit is not None and self.chars > self.limit


def estimate_tokens(chars: int) -> int:
    return math.ceil(chars / CHARS_PER_TOKEN)


def markdown_body(text: str) -> str:
    """What follows the frontmatter: the part an agent loads when it activates the skill."""
    lines = text.split("\n")
    return "\n".join(lines[frontmatter_lines(lines) :])


def _file_row(kind: str, skill_dir: Path, path: Path, limit: int | None = None) -> BudgetRow:
    text = path.read_text(encoding="utf-8")
    return BudgetRow(kind, path.relative_to(skill_dir).as_posix(), len(text), len(text.splitlines()), limit)


def measure(skill_dir: Path) -> list[BudgetRow]:
    """The rows of the budget report: always-on cost, SKILL.md body, then every on-demand file."""
    skill_md = skill_dir / "SKILL.md"
    text = skill_md.read_text(encoding="utf-8")
    fm = read_frontmatter(text, "SKILL.md")
    name, description = str(fm.get("name", "")), str(fm.get("description", ""))
    body = markdown_body(text)
    rows = [
        BudgetRow("always-on", "name + description", len(name) + len(description), 1),
        BudgetRow("skill body", "SKILL.md body", len(body), len(body.splitlines()), SKILL_BODY_MAX_CHARS),
    ]
    rows += [_file_row("rule", skill_dir, p, RULE_MAX_CHARS) for p in rule_files(skill_dir)]
    for folder in ON_DEMAND_DIRS:
        files = sorted(
            p for p in (skill_dir / folder).glob("*") if p.is_file() and not p.name.startswith(".")
        )
        rows += [_file_row(folder.rstrip("s"), skill_dir, p) for p in files]
    return rows


def render(rows: list[BudgetRow]) -> Table:
    """The rows as a rich table, with totals per tier; rows over their limit are shown in red."""
    table = Table(
        title="Context budget",
        caption=f"tokens estimated as characters / {CHARS_PER_TOKEN}; on-demand files load only when opened",
    )
    table.add_column("loaded")
    table.add_column("what")
    table.add_column("chars", justify="right")
    table.add_column("~tokens", justify="right")
    table.add_column("lines", justify="right")
    table.add_column("limit", justify="right")
    for row in rows:
        style = "red" if row.over else None
        limit = f"{row.limit:,} chars" if row.limit is not None else ""
        cells = (row.kind, row.rel, f"{row.chars:,}", f"{row.tokens:,}", f"{row.lines:,}", limit)
        table.add_row(*cells, style=style)
    activation = sum(r.chars for r in rows if r.kind in ("always-on", "skill body"))
    everything = sum(r.chars for r in rows)
    table.add_section()
    table.add_row(
        "on activation", "always-on + SKILL.md body", f"{activation:,}", f"{estimate_tokens(activation):,}"
    )
    table.add_row("everything", "all of the above", f"{everything:,}", f"{estimate_tokens(everything):,}")
    return table


def row_json(row: BudgetRow) -> dict[str, object]:
    """A row as the JSON report holds it."""
    return {"kind": row.kind, "what": row.rel, "chars": row.chars, "tokens": row.tokens, "limit": row.limit}
