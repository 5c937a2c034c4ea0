"""Build small, valid skill trees in a temporary folder, for the engine's tests."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import yaml

from fenceproof.corpus import parse_sections
from fenceproof.index import rule_files, write

SKILL_MD = """---
name: python-backend
description: "A tiny skill used by the engine's tests."
---
# Test skill
"""

SECTIONS_MD = """# Sections

## asyncio: Asyncio
**Impact:** HIGH
**Description:** Tasks and cancellation.

## sqlalchemy: SQLAlchemy
**Impact:** HIGH
**Description:** Sessions and relationships.
"""

RULE_FRONTMATTER = """---
title: A rule for the tests
category: {category}
impact: HIGH
impactDescription: Something goes wrong in a test.
tags: [test]
symptoms: ["a test fails"]
errors: ["TypeError: a test error"]
---
"""


def make_skill(root: Path, rules: dict[str, str] | None = None, skill_md: str = SKILL_MD) -> Path:
    """A repository at ``root`` with a skill holding ``rules`` ({file name: body after the frontmatter})."""
    skill = root / "skills" / "python-backend"
    (skill / "rules").mkdir(parents=True, exist_ok=True)
    (skill / "SKILL.md").write_text(skill_md, "utf-8")
    (skill / "rules" / "_sections.md").write_text(SECTIONS_MD, "utf-8")
    metadata = {
        "version": "0.1.0",
        "date": "2026-11-25",
        "abstract": "A tiny skill used by the engine's tests.",
        "counts": {"categories": 2, "rules": len(rules or {})},
        "verifiedWith": {"python": "3.11", "postgresql": "15"},
    }
    (skill / "metadata.json").write_text(json.dumps(metadata), "utf-8")
    for name, body in (rules or {}).items():
        category = name.split("-", 1)[0]
        text = RULE_FRONTMATTER.format(category=category) + textwrap.dedent(body)
        (skill / "rules" / name).write_text(text, "utf-8")
    return skill


def rule_path(root: Path, name: str) -> Path:
    return root / "skills" / "python-backend" / "rules" / name


# Twenty rule topics for the budget tests: as long as real ones get (`concurrency limits`, `background work`).
LONG_TOPICS = (
    "alpha budget", "bravo budget", "charlie budget", "delta budget", "echo budget", "foxtrot budget",
    "golf budget", "hotel budget", "india budget", "juliett budget", "kilo budget", "lima budget",
    "mike budget", "november budget", "oscar budget", "papa budget", "quebec budget", "romeo budget",
    "sierra budget", "tango budget",
)  # fmt: skip


def long_rule_frontmatter(category: str, topic: str) -> dict[str, object]:
    """Frontmatter as long as the schema and the template allow in spirit: long symptoms, four long errors."""
    word = topic.split()[0]
    return {
        "title": f"Keep the {word} rule's advice in one imperative line of about ninety characters",
        "category": category,
        "impact": "HIGH",
        "impactDescription": f"Ignoring the {word} rule breaks production in a way that takes long to explain.",
        "tags": [word, "budget"],
        "symptoms": [
            f"the {word} endpoint stalls under load and every other request on the worker waits until it "
            "returns, then the health check fails",
            f"a second symptom of the {word} rule that is also rather long and descriptive",
        ],
        "errors": [
            f"sqlalchemy.exc.{word.title()}Error: the {word} operation could not complete because the pool "
            "was exhausted while waiting (Background on this error at: https://sqlalche.me/e/21/3o7r)",
            f"RuntimeError: {word} task was cancelled while its connection was still checked out of the pool",
            f"{word}.exceptions.{word.title()}Timeout",
            f"DeprecationWarning: {word}_on_event is deprecated, use the newer {word} handlers instead.",
        ],
    }


def copy_with_long_rules(skill_dir: Path, root: Path, count: int = 20) -> Path:
    """A copy of ``skill_dir`` under ``root`` whose rules are replaced by ``count`` long ones, spread over its
    categories, with the generated parts regenerated: the hand-written text as it is, the indexes as they
    would be with that many rules."""
    copy = root / "skills" / "python-backend"
    shutil.copytree(skill_dir, copy)
    for rule in rule_files(copy):
        rule.unlink()
    sections = parse_sections((copy / "rules" / "_sections.md").read_text("utf-8"), "_sections.md")
    for k, topic in enumerate(LONG_TOPICS[:count]):
        category = sections[k % len(sections)].id
        fm = long_rule_frontmatter(category, topic)
        body = f"# {fm['title']}\n\nThe body of a rule made up for the budget tests.\n"
        name = f"{category}-{topic.replace(' ', '-')}.md"
        (copy / "rules" / name).write_text(f"---\n{yaml.safe_dump(fm, sort_keys=False)}---\n{body}", "utf-8")
    write(copy)
    return copy
