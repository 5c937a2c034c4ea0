"""Relative links the site generator does not check: to files other than Markdown, and out of the skill.

Zensical's strict mode fails on a link to a missing Markdown page or anchor, but says nothing about
``[template](../assets/app.py)`` pointing at a file that is gone. And nothing in the skill may point outside
``skills/python-backend/``: installers copy only that folder.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from markdown_it import MarkdownIt
from markdown_it.token import Token

from fenceproof.blocks import blank_frontmatter
from fenceproof.models import Document

_PARSER = MarkdownIt("commonmark").enable("table")


def _targets(tokens: list[Token]) -> list[tuple[str, int, int]]:
    """(href, first line, last line) of each link and image, with the lines of the block holding it."""
    found: list[tuple[str, int, int]] = []
    for token in tokens:
        if token.type != "inline" or token.map is None or not token.children:
            continue
        for child in token.children:
            href = child.attrs.get("href") if child.type == "link_open" else None
            if child.type == "image":
                href = child.attrs.get("src")
            if isinstance(href, str):
                found.append((href, token.map[0] + 1, token.map[1]))
    return found


def _line_of(lines: list[str], href: str, first: int, last: int) -> int:
    for number in range(first, last + 1):
        if href in lines[number - 1]:
            return number
    return first


def check_links(doc: Document, skill_dir: Path) -> list[str]:
    """``path:line: problem (target)`` for each relative link that is broken or leaves the skill folder."""
    text = blank_frontmatter(doc.path.read_text(encoding="utf-8"))
    lines = text.split("\n")
    skill = skill_dir.resolve()
    problems: list[str] = []
    for href, first, last in _targets(_PARSER.parse(text)):
        parts = urlsplit(href)
        if parts.scheme or parts.netloc or not parts.path or href.startswith("/"):
            continue  # a URL, an anchor on the same page, or an absolute path (the generator warns on those)
        target = (doc.path.parent / unquote(parts.path)).resolve()
        where = f"{doc.rel}:{_line_of(lines, href, first, last)}"
        if not target.is_relative_to(skill):
            problems.append(f"{where}: link leaves the skill folder, which installers copy alone ({href})")
        elif not target.name.endswith(".md") and not target.exists():
            problems.append(f"{where}: linked file does not exist ({href})")
    return problems
