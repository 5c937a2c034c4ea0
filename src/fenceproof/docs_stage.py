"""Stage the skill's Markdown for the site generator.

The skill is copied to a staging folder and each Markdown page is rewritten for display only:

- every fence loses its engine attributes (pymdownx.superfences does not recognise ```` ```python expect="..." ````
  as a fence) and gets its verification status from the engine's last report as the code block's title;
- after the page title, a row of badges: impact, category and tags for a rule, and the page's overall status;
- frontmatter is reduced to the keys the generator knows (title, description).

Each staged line remembers the source line it came from, so a build diagnostic names the real file and line.
"""

from __future__ import annotations

import html
import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from fenceproof.blocks import frontmatter_lines
from fenceproof.corpus import Corpus, Section
from fenceproof.docs_report import PageStatus, ReportRows, page_status, run_summary
from fenceproof.models import Block, Document

IMPACT_ORDER = {"CRITICAL": 0, "HIGH": 1, "MEDIUM": 2, "LOW": 3}
FENCE_LINE = re.compile(r"^(?P<prefix>[ \t>]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
GROUPS = (("reference", "References"), ("checklist", "Checklists"), ("example", "Examples"))
ABOUT = "About the rules"
# Pages whose own titles do not suit the navigation (the template's title is a placeholder).
NAV_TITLES = {"sections": "Categories", "template": "Rule template"}


@dataclass
class StagedPage:
    """One staged Markdown page and, for each of its lines, the source line it came from."""

    rel: str  # relative to the staging folder, e.g. "rules/asyncio-cancellation.md"
    source: str  # the source file relative to the repository root
    origin: list[int] = field(default_factory=list)  # origin[i] is the source line of staged line i + 1
    status: PageStatus | None = None

    def source_line(self, staged_line: int) -> int:
        if 1 <= staged_line <= len(self.origin):
            return self.origin[staged_line - 1]
        return 1


@dataclass
class Staged:
    """The staging folder, its pages by staged path, and the navigation in generator form."""

    root: Path
    pages: dict[str, StagedPage]
    nav: list[object]


def _attr(value: str) -> str:
    """A value that fits between double quotes in a superfences attribute list."""
    return value.replace("\\", "/").replace('"', "'").replace("{", "(").replace("}", ")")


def _fence_ranges(blocks: list[Block]) -> list[tuple[int, int]]:
    """First and last line (1-based, inclusive) of each block, closing fence included."""
    return [(b.line, b.line + b.code.count("\n") + 1) for b in blocks]


def _title_line(lines: list[str], start: int, blocks: list[Block]) -> int | None:
    """The 1-based line of the page's first ``# `` heading outside code blocks."""
    ranges = _fence_ranges(blocks)
    for number in range(start + 1, len(lines) + 1):
        if lines[number - 1].startswith("# ") and not any(a <= number <= b for a, b in ranges):
            return number
    return None


def _span(css: str, text: str, title: str | None = None) -> str:
    tip = f' title="{html.escape(title)}"' if title else ""
    return f'<span class="fp-badge {css}"{tip}>{html.escape(text)}</span>'


def badge_html(doc: Document, section: Section | None, status: PageStatus, note: str = "") -> list[str]:
    """The HTML block shown under a page's title: rule badges, the page's verification status, a note."""
    fm = doc.frontmatter
    spans: list[str] = []
    extra: list[str] = []
    if doc.kind == "rule":
        impact = str(fm.get("impact", ""))
        description = str(fm.get("impactDescription", ""))
        spans.append(_span(f"fp-impact fp-impact-{impact.lower()}", f"Impact: {impact}", description))
        category = section.title if section else str(fm.get("category", ""))
        spans.append(_span("fp-category", f"Category: {category}"))
        for tag in fm.get("tags", []) or []:  # type: ignore[union-attr]
            spans.append(_span("fp-tag", f"#{tag}"))
        if description:
            extra.append(f'<p class="fp-impact-description">{html.escape(description)}</p>')
        symptoms = [str(s) for s in fm.get("symptoms", []) or []]  # type: ignore[union-attr]
        errors = [str(e) for e in fm.get("errors", []) or []]  # type: ignore[union-attr]
        if symptoms or errors:
            extra.append('<details class="fp-symptoms"><summary>When this rule applies</summary>')
            extra.extend(f"<p>{html.escape(s)}</p>" for s in symptoms)
            extra.append('<ul class="fp-errors">')
            extra.extend(f"<li><code>{html.escape(e)}</code></li>" for e in errors)
            extra.append("</ul></details>")
    if doc.kind == "rule" or status.state != "none":
        spans.append(_span(f"fp-status fp-status-{status.state}", status.label))
    if note:
        extra.append(f'<p class="fp-run-summary">{html.escape(note)}</p>')
    row = ['<div class="fp-badges">', *spans, "</div>"] if spans else []
    return [*row, *extra]


def _staged_frontmatter(doc: Document) -> list[str]:
    """Only keys the generator understands; a rule's impact description becomes its meta description."""
    fm = doc.frontmatter
    keep: list[str] = []
    title = fm.get("title")
    description = fm.get("description") or fm.get("impactDescription")
    if title:
        keep.append(f"title: {_yaml_str(str(title))}")
    if description:
        keep.append(f"description: {_yaml_str(str(description))}")
    return ["---", *keep, "---"] if keep else []


def _yaml_str(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid YAML scalar


def _fence_with_status(line: str, block: Block, status_label: str, outcome: str) -> str:
    match = FENCE_LINE.match(line)
    if match is None:  # the corpus and the file disagree; leave the line alone
        return line
    lang = block.lang or "text"
    attrs = f'.{lang} .fp-block .fp-{outcome} title="{_attr(status_label)}"'
    return f"{match['prefix']}{match['fence']} {{ {attrs} }}"


def render_page(
    doc: Document, text: str, section: Section | None, status: PageStatus, note: str = ""
) -> tuple[str, list[int]]:
    """The staged text of one page and the source line of each staged line."""
    lines = text.splitlines()
    fm_end = frontmatter_lines(lines)
    out: list[str] = []
    origin: list[int] = []

    def emit(chunk: list[str], source_line: int) -> None:
        out.extend(chunk)
        origin.extend([source_line] * len(chunk))

    emit(_staged_frontmatter(doc), 1)
    by_line = {b.line: b for b in doc.blocks}
    badges = badge_html(doc, section, status, note)
    title = _title_line(lines, fm_end, doc.blocks)
    if title is None and badges:
        emit(["", *badges, ""], fm_end + 1)
    for number in range(fm_end + 1, len(lines) + 1):
        line = lines[number - 1]
        block = by_line.get(number)
        if block is not None:
            block_status = status.blocks[number]
            line = _fence_with_status(line, block, block_status.label, block_status.outcome)
        emit([line], number)
        if number == title and badges:
            emit(["", *badges, ""], number)
    return "\n".join(out) + "\n", origin


def _rule_key(doc: Document) -> tuple[int, str]:
    return (IMPACT_ORDER.get(str(doc.frontmatter.get("impact")), 9), doc.rel)


def build_nav(corpus: Corpus, skill_rel: str) -> list[object]:
    """Home, then one section per category in the order of _sections.md, then the other kinds of page."""

    def page(doc: Document) -> str:
        return doc.rel.removeprefix(skill_rel + "/")

    docs = corpus.documents
    nav: list[object] = []
    placed: set[str] = set()
    for doc in docs:
        if doc.kind == "skill":
            nav.append({"Home": page(doc)})
            placed.add(doc.rel)
    rules = sorted((d for d in docs if d.kind == "rule"), key=_rule_key)
    for section in sorted(corpus.sections, key=lambda s: s.order):
        members = [d for d in rules if d.frontmatter.get("category") == section.id]
        if members:
            nav.append({section.title: [page(d) for d in members]})
            placed.update(d.rel for d in members)
    strays = [d for d in rules if d.rel not in placed]
    if strays:
        nav.append({"Other rules": [page(d) for d in strays]})
        placed.update(d.rel for d in strays)
    for kind, title in GROUPS:
        members = sorted((d for d in docs if d.kind == kind), key=lambda d: d.rel)
        if members:
            nav.append({title: [page(d) for d in members]})
            placed.update(d.rel for d in members)
    rest = sorted((d for d in docs if d.rel not in placed), key=lambda d: d.rel)
    if rest:
        nav.append(
            {ABOUT: [{NAV_TITLES[d.kind]: page(d)} if d.kind in NAV_TITLES else page(d) for d in rest]}
        )
    return nav


def stage(repo_root: Path, dest: Path, corpus: Corpus, report: ReportRows | None) -> Staged:
    """Copy the skill to ``dest`` and rewrite its Markdown pages for the site."""
    skill = corpus.skill_dir
    skill_rel = skill.relative_to(repo_root).as_posix()
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(skill, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    sections = {s.id: s for s in corpus.sections}
    pages: dict[str, StagedPage] = {}
    for doc in corpus.documents:
        rel = doc.rel.removeprefix(skill_rel + "/")
        status = page_status(report, doc.rel, doc.path, doc.blocks)
        section = sections.get(str(doc.frontmatter.get("category"))) if doc.kind == "rule" else None
        note = run_summary(report) if doc.kind == "skill" else ""
        text, origin = render_page(doc, doc.path.read_text(encoding="utf-8"), section, status, note)
        (dest / rel).write_text(text, encoding="utf-8")
        pages[rel] = StagedPage(rel=rel, source=doc.rel, origin=origin, status=status)
    return Staged(root=dest, pages=pages, nav=build_nav(corpus, skill_rel))
