"""Stand-in for ``fenceproof.corpus`` until it lands on main: the documents and sections the site needs.

Same shape as the engine's corpus (``documents`` of models.Document, ``sections`` with id/title/impact/
description/order); replace the import in docs_stage.py and docs.py with ``fenceproof.corpus`` and delete this.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml
from markdown_it import MarkdownIt

from fenceproof.models import Block, Document

_ATTR = re.compile(r'([A-Za-z_][A-Za-z0-9_-]*)="([^"]*)"')
_SECTION = re.compile(r"^##\s+(?:\d+\.\s*)?(?P<title>.+?)\s*\((?P<id>[a-z][a-z0-9-]*)\)\s*$")
_IMPACT = re.compile(r"\*\*Impact:?\*\*:?\s*([A-Z-]+)")


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    impact: str
    description: str
    order: int


@dataclass
class Corpus:
    documents: list[Document]
    sections: list[Section]


def _kind(rel: str) -> str:
    name = rel.rsplit("/", 1)[-1]
    if rel.endswith("/SKILL.md"):
        return "skill"
    if name == "_sections.md":
        return "sections"
    if name == "_template.md":
        return "template"
    for folder, kind in (("rules", "rule"), ("references", "reference"), ("checklists", "checklist")):
        if f"/{folder}/" in rel:
            return kind
    return "example" if "/examples/" in rel else "other"


def _document(repo_root: Path, path: Path) -> Document:
    rel = path.relative_to(repo_root).as_posix()
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    front: dict[str, object] = {}
    offset = 0
    if lines and lines[0].strip() == "---":
        end = next(i for i in range(1, len(lines)) if lines[i].strip() in ("---", "..."))
        front = yaml.safe_load("\n".join(lines[1:end])) or {}
        offset = end + 1
    body = "\n".join(lines[offset:]) + "\n"
    blocks: list[Block] = []
    for token in MarkdownIt("commonmark").parse(body):
        if token.type != "fence" or token.map is None:
            continue
        lang, _, rest = token.info.strip().partition(" ")
        blocks.append(
            Block(
                path=path,
                rel=rel,
                line=token.map[0] + 1 + offset,
                lang=lang.lower(),
                code=token.content,
                attrs=dict(_ATTR.findall(rest)),
            )
        )
    return Document(path=path, rel=rel, kind=_kind(rel), frontmatter=front, blocks=blocks)


def _sections(path: Path) -> list[Section]:
    if not path.is_file():
        return []
    found: list[Section] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _SECTION.match(line)
        if match:
            found.append(Section(match["id"], match["title"], "", "", len(found) + 1))
        elif found and (impact := _IMPACT.search(line)):
            last = found[-1]
            found[-1] = Section(last.id, last.title, impact.group(1), last.description, last.order)
    return found


def load_corpus(repo_root: Path) -> Corpus:
    skill = repo_root / "skills" / "python-backend"
    documents = [_document(repo_root, p) for p in sorted(skill.rglob("*.md"))]
    return Corpus(documents=documents, sections=_sections(skill / "rules" / "_sections.md"))
