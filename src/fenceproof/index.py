"""Generate the skill's derived indexes from the rules' frontmatter, or check they are up to date.

One source of truth: each rule's frontmatter (title, category, impact, symptoms, errors). From it this module
writes four things, and only these, leaving every hand-written line alone:

- the rule index in ``SKILL.md`` between ``<!-- rules:start -->`` and ``<!-- rules:end -->``: grouped by
  category in the order of ``rules/_sections.md``, one line per rule saying when to load it;
- ``AGENTS-index.md`` (all of it): error phrases to rule files, to paste into AGENTS.md or CLAUDE.md
  (``fenceproof.agents_index``);
- the rule list under each category heading of ``rules/_sections.md``, between
  ``<!-- rules:<category>:start -->`` and ``<!-- rules:<category>:end -->`` (inserted at the end of the
  category's section when missing);
- ``counts`` in ``metadata.json`` (categories, rules, references, checklists, examples: files counted).

``fenceproof index`` writes them; ``fenceproof index --check`` exits 1 with a diff naming each stale file.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from fenceproof import agents_index
from fenceproof.agents_index import AGENTS_INDEX
from fenceproof.corpus import SKILL_DIR, Corpus, Section, find_repo_root, load_corpus, relpath
from fenceproof.index_text import code, key_phrase, shorten
from fenceproof.models import ConfigError, Document

SKILL_START = "<!-- rules:start -->"
SKILL_END = "<!-- rules:end -->"
IMPACT_ORDER = ("CRITICAL", "HIGH", "MEDIUM", "LOW")
# A rule's SKILL.md line holds its first symptom and its first error's key phrase (the most telling ones) in
# at most this many characters, so that 20 rules and the hand-written text fit the body's budget
# (tests/test_budget.py simulates them).
LINE_MAX_CHARS = 150
COUNTED_DIRS = ("references", "checklists", "examples")


@dataclass(frozen=True)
class Rule:
    """What the indexes need from one rule file."""

    file: str  # file name inside rules/, e.g. "asyncio-cancellation.md"
    title: str
    category: str
    impact: str
    impact_description: str
    symptoms: tuple[str, ...]
    errors: tuple[str, ...]

    @classmethod
    def of(cls, document: Document) -> Rule:
        fm = document.frontmatter
        return cls(
            file=document.path.name,
            title=str(fm["title"]).strip(),
            category=str(fm["category"]),
            impact=str(fm.get("impact", "")),
            impact_description=" ".join(str(fm.get("impactDescription", "")).split()),
            symptoms=_strings(fm.get("symptoms")),
            errors=_strings(fm.get("errors")),
        )


def _strings(value: object) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    if value is None:
        return ()
    return (str(value),)


def rule_files(skill_dir: Path) -> list[Path]:
    """The rule files: ``rules/*.md`` except the ones starting with ``_`` (sections, template)."""
    return sorted(p for p in (skill_dir / "rules").glob("*.md") if not p.name.startswith("_"))


def _rank(rule: Rule) -> tuple[int, str]:
    impact = IMPACT_ORDER.index(rule.impact) if rule.impact in IMPACT_ORDER else len(IMPACT_ORDER)
    return impact, rule.title.lower()


def group_rules(rules: list[Rule], sections: list[Section]) -> dict[str, list[Rule]]:
    """Rules by category id, in ``_sections.md`` order; most severe impact first, then by title.

    The corpus loader has already checked that each rule's category is one of the sections.
    """
    groups: dict[str, list[Rule]] = {s.id: [] for s in sections}
    for rule in rules:
        groups[rule.category].append(rule)
    return {cid: sorted(members, key=_rank) for cid, members in groups.items()}


def topic(rule: Rule) -> str:
    """What the rule is about, from its file name: ``asyncio-concurrency-limits.md`` -> ``concurrency limits``."""
    stem = rule.file.removesuffix(".md")
    return stem.removeprefix(f"{rule.category}-").replace("-", " ")


def skill_line(rule: Rule) -> str:
    """One SKILL.md index line, at most ``LINE_MAX_CHARS``: the topic linked to the rule, the key phrase of its
    first error that has one (as Python prints it, see ``index_text.key_phrase``) and when to load it: its
    first symptom, cut to the room left."""
    head = f"- [{topic(rule)}](rules/{rule.file})"
    phrase = next((p for p in map(key_phrase, rule.errors) if p), None)
    tail = f"; {code(phrase)}" if phrase else ""
    symptom = " ".join(rule.symptoms[0].split()).rstrip(".") if rule.symptoms else ""
    room = LINE_MAX_CHARS - len(head) - len(": ") - len(tail)
    line = f"{head}: {shorten(symptom, max(room, 1))}{tail}" if symptom else head + tail
    return line if len(line) <= LINE_MAX_CHARS else shorten(line, LINE_MAX_CHARS)


def skill_index(groups: dict[str, list[Rule]], sections: list[Section]) -> str:
    """The text between the SKILL.md markers (without them)."""
    out: list[str] = []
    for section in sections:
        members = groups[section.id]
        if not members:
            continue
        out += ["", f"### {section.title}", ""]
        out += [skill_line(r) for r in members]
    return "\n".join(out) + "\n\n"


def sections_list(members: list[Rule]) -> str:
    """The text between one category's markers in ``_sections.md``."""
    if not members:
        return "\n_No rules yet._\n\n"
    lines = []
    for r in members:
        impact = f" ({r.impact})" if r.impact else ""
        desc = f": {' '.join(r.impact_description.split())}" if r.impact_description else ""
        lines.append(f"- [{r.title}]({r.file}){impact}{desc}")
    return "\n" + "\n".join(lines) + "\n\n"


def replace_between(text: str, start: str, end: str, inner: str, rel: str) -> str:
    """Replace what lies between the ``start`` and ``end`` marker lines; both must occur once, in order."""
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.strip() == start]
    ends = [i for i, line in enumerate(lines) if line.strip() == end]
    if len(starts) != 1 or len(ends) != 1 or ends[0] < starts[0]:
        found = f"found {len(starts)} start and {len(ends)} end marker(s)"
        line = (starts or ends or [0])[0] + 1
        raise ConfigError(rel, line, f"needs exactly one {start} line followed by one {end} line; {found}")
    s, e = starts[0], ends[0]
    return "".join(lines[: s + 1]) + inner + "".join(lines[e:])


def render_sections(text: str, groups: dict[str, list[Rule]], sections: list[Section], rel: str) -> str:
    """``_sections.md`` with each category's rule list regenerated (markers added where missing)."""
    lines = text.splitlines()
    # Work bottom-up so the line numbers of earlier headings stay valid.
    for k in range(len(sections) - 1, -1, -1):
        section = sections[k]
        first = section.line - 1
        stop = sections[k + 1].line - 1 if k + 1 < len(sections) else len(lines)
        start, end = f"<!-- rules:{section.id}:start -->", f"<!-- rules:{section.id}:end -->"
        part = lines[first:stop]
        if not any(line.strip() == start for line in part):
            while len(part) > 1 and not part[-1].strip():
                part.pop()
            part += ["", start, end, ""]
        new = replace_between("\n".join(part) + "\n", start, end, sections_list(groups[section.id]), rel)
        lines[first:stop] = new.splitlines()
    return "\n".join(lines).rstrip("\n") + "\n"


def count_files(corpus: Corpus) -> dict[str, int]:
    """The counts metadata.json records: categories, rules, and the files in each on-demand folder."""
    counts = {"categories": len(corpus.sections), "rules": len(corpus.rules())}
    for name in COUNTED_DIRS:
        folder = corpus.skill_dir / name
        files = folder.iterdir() if folder.is_dir() else ()
        counts[name] = sum(1 for p in files if p.is_file() and not p.name.startswith("."))
    return counts


def _metadata_text(data: dict[str, object]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def generate(root: Path) -> dict[Path, str]:
    """What SKILL.md, AGENTS-index.md, rules/_sections.md and metadata.json must contain, from the rules'
    frontmatter."""
    corpus = load_corpus(root)
    skill_dir = corpus.skill_dir
    skill_md, sections_md = skill_dir / "SKILL.md", skill_dir / "rules" / "_sections.md"
    metadata = skill_dir / "metadata.json"
    groups = group_rules([Rule.of(d) for d in corpus.rules()], corpus.sections)

    skill_text = skill_md.read_text(encoding="utf-8")
    skill_rel = relpath(skill_md, corpus.root)
    new_skill = replace_between(
        skill_text, SKILL_START, SKILL_END, skill_index(groups, corpus.sections), skill_rel
    )

    sections_text = sections_md.read_text(encoding="utf-8")
    sections_rel = relpath(sections_md, corpus.root)
    new_sections = render_sections(sections_text, groups, corpus.sections, sections_rel)

    meta = json.loads(metadata.read_text(encoding="utf-8"))  # load_corpus checked it against its schema
    meta["counts"] = {**meta["counts"], **count_files(corpus)}
    ordered = [r for section in corpus.sections for r in groups[section.id]]
    return {
        skill_md: new_skill,
        skill_dir / AGENTS_INDEX: agents_index.render(ordered, skill_dir.name),
        sections_md: new_sections,
        metadata: _metadata_text(meta),
    }


def _same(path: Path, current: str, wanted: str) -> bool:
    if path.suffix == ".json":  # formatting is the author's; only the data must agree
        return bool(current) and json.loads(current) == json.loads(wanted)
    return current == wanted


def stale(root: Path) -> list[str]:
    """A unified diff per file whose committed text differs from what the rules generate; empty when in sync."""
    root = find_repo_root(root)
    diffs = []
    for path, wanted in generate(root).items():
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if _same(path, current, wanted):
            continue
        if path.suffix == ".json":
            current = _metadata_text(json.loads(current))
        rel = relpath(path, root)
        diff = difflib.unified_diff(
            current.splitlines(keepends=True),
            wanted.splitlines(keepends=True),
            fromfile=f"{rel} (committed)",
            tofile=f"{rel} (generated from the rules' frontmatter)",
        )
        diffs.append("".join(diff))
    return diffs


def write(root: Path) -> list[Path]:
    """Rewrite the generated parts; returns the files that changed."""
    changed = []
    for path, wanted in generate(root).items():
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if not _same(path, current, wanted):
            path.write_text(wanted, encoding="utf-8")
            changed.append(path)
    return changed


def main_index(argv: list[str] | None = None) -> int:
    """``fenceproof index [--check] [--root DIR]``: 0 in sync or written, 1 stale (with --check), 2 bad input."""
    parser = argparse.ArgumentParser(
        prog="fenceproof index",
        description="Regenerate the rule index in SKILL.md, the always-on error index AGENTS-index.md, the "
        "rule lists in rules/_sections.md and the counts in metadata.json from the rules' frontmatter.",
    )
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a file is stale")
    parser.add_argument(
        "--root", type=Path, help=f"the repository holding {SKILL_DIR} (default: found from here)"
    )
    args = parser.parse_args(argv)
    try:
        root = find_repo_root(args.root)
        if args.check:
            diffs = stale(root)
            for diff in diffs:
                sys.stdout.write(diff if diff.endswith("\n") else diff + "\n")
            if diffs:
                print(
                    f"{len(diffs)} generated file(s) out of date: run `fenceproof index` and commit the result."
                )
                return 1
            print("Rule index, AGENTS-index.md, _sections.md and metadata.json counts are up to date.")
            return 0
        changed = write(root)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in changed:
        print(f"wrote {relpath(path, root)}")
    if not changed:
        print("Nothing to do: the generated parts are up to date.")
    return 0
