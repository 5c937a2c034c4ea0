"""Build small, valid skill trees in a temporary folder, for the engine's tests."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

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
