"""Generate the skill's derived indexes from the rules' frontmatter, or check they are up to date.

One source of truth: each rule's frontmatter (title, category, impact, symptoms, errors). From it this module
writes three things, and only these, leaving every hand-written line alone:

- the rule index in ``SKILL.md`` between ``<!-- rules:start -->`` and ``<!-- rules:end -->``: grouped by
  category in the order of ``rules/_sections.md``, one line per rule saying when to load it;
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
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from fenceproof.models import ConfigError

SKILL_REL = Path("skills/python-backend")
SKILL_START = "<!-- rules:start -->"
SKILL_END = "<!-- rules:end -->"
IMPACT_ORDER = ("CRITICAL", "HIGH", "MEDIUM", "LOW")
# How much of a rule's frontmatter goes into its SKILL.md line: the first entries are the most telling ones.
SYMPTOMS_PER_LINE = 1
ERRORS_PER_LINE = 1
ERROR_MAX_CHARS = 72
COUNTED_DIRS = ("references", "checklists", "examples")

_FRONTMATTER = re.compile(r"\A---[ \t]*\n(.*?\n)?---[ \t]*(?:\n|\Z)", re.DOTALL)
_H2 = re.compile(r"^##[ \t]+(.+?)[ \t]*#*[ \t]*$")


@dataclass(frozen=True)
class Rule:
    """What the indexes need from one rule file."""

    file: str  # file name inside rules/, e.g. "asyncio-cancellation.md"
    rel: str  # path relative to the repository root, for messages
    title: str
    category: str
    impact: str
    impact_description: str
    symptoms: tuple[str, ...]
    errors: tuple[str, ...]


@dataclass(frozen=True)
class Category:
    """One H2 section of ``rules/_sections.md``."""

    id: str
    title: str
    line: int  # 0-based index of the heading line in _sections.md


def split_frontmatter(text: str) -> tuple[str | None, str]:
    """Return (the YAML between the leading ``---`` lines or None, the body after it)."""
    m = _FRONTMATTER.match(text)
    if m is None:
        return None, text
    return m.group(1) or "", text[m.end() :]


def read_frontmatter(path: Path, rel: str) -> dict[str, object]:
    """The parsed YAML frontmatter of a Markdown file; a ConfigError naming the file when it is missing or bad."""
    raw, _ = split_frontmatter(path.read_text(encoding="utf-8"))
    if raw is None:
        raise ConfigError(rel, 1, "no YAML frontmatter (the file must start with a '---' line)")
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 2 if mark is not None else 1
        raise ConfigError(rel, line, f"malformed YAML frontmatter: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(rel, 2, "the frontmatter must be a mapping of keys to values")
    return data


def _strings(value: object) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    if value is None:
        return ()
    return (str(value),)


def rule_files(skill_dir: Path) -> list[Path]:
    """The rule files: ``rules/*.md`` except the ones starting with ``_`` (sections, template)."""
    return sorted(p for p in (skill_dir / "rules").glob("*.md") if not p.name.startswith("_"))


def load_rules(skill_dir: Path) -> list[Rule]:
    rules = []
    for path in rule_files(skill_dir):
        rel = _rel(skill_dir, path)
        fm = read_frontmatter(path, rel)
        missing = [k for k in ("title", "category") if not fm.get(k)]
        if missing:
            raise ConfigError(rel, 1, f"frontmatter lacks {', '.join(missing)}")
        rules.append(
            Rule(
                file=path.name,
                rel=rel,
                title=str(fm["title"]).strip(),
                category=str(fm["category"]).strip(),
                impact=str(fm.get("impact", "")).strip(),
                impact_description=str(fm.get("impactDescription", "")).strip(),
                symptoms=_strings(fm.get("symptoms")),
                errors=_strings(fm.get("errors")),
            )
        )
    return rules


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def parse_categories(text: str) -> list[Category]:
    """The H2 sections of ``_sections.md``, in file order.

    A heading reads ``## asyncio: Asyncio`` (id, colon, title) or ``## 1. Asyncio (asyncio)`` (an optional
    number, the title, the id in parentheses); otherwise the id is the slug of the heading.
    """
    cats = []
    in_fence = False
    for i, line in enumerate(text.splitlines()):
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        m = None if in_fence else _H2.match(line)
        if m is None:
            continue
        heading = re.sub(r"^\d+[.)]?\s+", "", m.group(1))
        if idm := re.match(r"^`?([a-z][a-z0-9-]*)`?:\s+(.+)$", heading):  # "asyncio: Asyncio"
            cid, title = idm.group(1), idm.group(2)
        elif idm := re.match(r"^(.*?)\s*\(`?([a-z][a-z0-9-]*)`?\)$", heading):  # "Asyncio (asyncio)"
            title, cid = idm.group(1), idm.group(2)
        else:
            title, cid = heading, _slug(heading)
        cats.append(Category(id=cid, title=title.strip(), line=i))
    return cats


def _rank(rule: Rule) -> tuple[int, str]:
    impact = IMPACT_ORDER.index(rule.impact) if rule.impact in IMPACT_ORDER else len(IMPACT_ORDER)
    return impact, rule.title.lower()


def group_rules(rules: list[Rule], categories: list[Category], sections_rel: str) -> dict[str, list[Rule]]:
    """Rules by category id, in ``_sections.md`` order; most severe impact first, then by title."""
    groups: dict[str, list[Rule]] = {c.id: [] for c in categories}
    for rule in rules:
        if rule.category not in groups:
            known = ", ".join(groups) or "none"
            message = f"category {rule.category!r} is not a section of {sections_rel} (known: {known})"
            raise ConfigError(rule.rel, 1, message)
        groups[rule.category].append(rule)
    return {cid: sorted(members, key=_rank) for cid, members in groups.items()}


def _code(text: str) -> str:
    """Inline code that survives backticks inside the text."""
    fence = "``" if "`" in text else "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _shorten(text: str, limit: int) -> str:
    """At most ``limit`` characters: the first clause when it fits, else cut at a word with an ellipsis."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    clause = re.split(r"; | \(|\. ", text, maxsplit=1)[0]
    if len(clause) <= limit:
        return clause
    return text[:limit].rsplit(" ", 1)[0].rstrip(" ,;:.") + "…"


def skill_line(rule: Rule) -> str:
    """One SKILL.md index line: the link, when to load it (first symptom) and the errors that point at it."""
    parts = [f"- [{rule.title}](rules/{rule.file})"]
    symptoms = [" ".join(s.split()).rstrip(".") for s in rule.symptoms[:SYMPTOMS_PER_LINE]]
    if symptoms:
        parts.append(f": when {'; '.join(symptoms)}")
    errors = list(dict.fromkeys(_shorten(e, ERROR_MAX_CHARS) for e in rule.errors))[:ERRORS_PER_LINE]
    if errors:
        parts.append(f"; {', '.join(_code(e) for e in errors)}")
    return "".join(parts)


def skill_index(groups: dict[str, list[Rule]], categories: list[Category]) -> str:
    """The text between the SKILL.md markers (without them)."""
    out: list[str] = []
    for cat in categories:
        members = groups[cat.id]
        if not members:
            continue
        out += ["", f"### {cat.title}", ""]
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


def render_sections(text: str, groups: dict[str, list[Rule]], categories: list[Category], rel: str) -> str:
    """``_sections.md`` with each category's rule list regenerated (markers added where missing)."""
    lines = text.splitlines()
    # Work bottom-up so the line numbers of earlier headings stay valid.
    for k in range(len(categories) - 1, -1, -1):
        cat = categories[k]
        stop = categories[k + 1].line if k + 1 < len(categories) else len(lines)
        start, end = f"<!-- rules:{cat.id}:start -->", f"<!-- rules:{cat.id}:end -->"
        section = lines[cat.line : stop]
        if not any(line.strip() == start for line in section):
            while len(section) > 1 and not section[-1].strip():
                section.pop()
            section += ["", start, end, ""]
        new = replace_between("\n".join(section) + "\n", start, end, sections_list(groups[cat.id]), rel)
        lines[cat.line : stop] = new.splitlines()
    return "\n".join(lines).rstrip("\n") + "\n"


def count_files(skill_dir: Path, categories: list[Category]) -> dict[str, int]:
    counts = {"categories": len(categories), "rules": len(rule_files(skill_dir))}
    for name in COUNTED_DIRS:
        folder = skill_dir / name
        files = folder.iterdir() if folder.is_dir() else ()
        counts[name] = sum(1 for p in files if p.is_file() and not p.name.startswith("."))
    return counts


def _rel(skill_dir: Path, path: Path) -> str:
    """A path as the messages show it: relative to the repository root when the skill sits in one."""
    root = skill_dir.parent.parent if skill_dir.parent.name == "skills" else skill_dir.parent
    return path.relative_to(root).as_posix()


def _metadata_text(data: dict[str, object]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def generate(skill_dir: Path) -> dict[Path, str]:
    """What SKILL.md, rules/_sections.md and metadata.json must contain, from the rules' frontmatter."""
    skill_md, sections_md = skill_dir / "SKILL.md", skill_dir / "rules" / "_sections.md"
    metadata = skill_dir / "metadata.json"
    for required in (skill_md, sections_md, metadata):
        if not required.is_file():
            raise ConfigError(_rel(skill_dir, required), 1, "file not found")
    sections_rel = _rel(skill_dir, sections_md)
    sections_text = sections_md.read_text(encoding="utf-8")
    categories = parse_categories(sections_text)
    if not categories:
        raise ConfigError(sections_rel, 1, "no '## <category>' headings found")
    groups = group_rules(load_rules(skill_dir), categories, sections_rel)

    skill_rel = _rel(skill_dir, skill_md)
    skill_text = skill_md.read_text(encoding="utf-8")
    new_skill = replace_between(
        skill_text, SKILL_START, SKILL_END, skill_index(groups, categories), skill_rel
    )

    meta_rel = _rel(skill_dir, metadata)
    try:
        meta = json.loads(metadata.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(meta_rel, exc.lineno, f"invalid JSON: {exc.msg}") from None
    if not isinstance(meta, dict):
        raise ConfigError(meta_rel, 1, "must be a JSON object")
    old_counts = meta.get("counts") if isinstance(meta.get("counts"), dict) else {}
    meta["counts"] = {**old_counts, **count_files(skill_dir, categories)}  # type: ignore[dict-item]

    return {
        skill_md: new_skill,
        sections_md: render_sections(sections_text, groups, categories, sections_rel),
        metadata: _metadata_text(meta),
    }


def _same(path: Path, current: str, wanted: str) -> bool:
    if path.suffix == ".json":  # formatting is the author's; only the data must agree
        return json.loads(current) == json.loads(wanted)
    return current == wanted


def stale(skill_dir: Path) -> list[str]:
    """A unified diff per file whose committed text differs from what the rules generate; empty when in sync."""
    diffs = []
    for path, wanted in generate(skill_dir).items():
        current = path.read_text(encoding="utf-8")
        if _same(path, current, wanted):
            continue
        if path.suffix == ".json":
            current = _metadata_text(json.loads(current))
        rel = _rel(skill_dir, path)
        diff = difflib.unified_diff(
            current.splitlines(keepends=True),
            wanted.splitlines(keepends=True),
            fromfile=f"{rel} (committed)",
            tofile=f"{rel} (generated from the rules' frontmatter)",
        )
        diffs.append("".join(diff))
    return diffs


def write(skill_dir: Path) -> list[Path]:
    """Rewrite the generated parts; returns the files that changed."""
    changed = []
    for path, wanted in generate(skill_dir).items():
        if not _same(path, path.read_text(encoding="utf-8"), wanted):
            path.write_text(wanted, encoding="utf-8")
            changed.append(path)
    return changed


def find_skill_dir(start: Path) -> Path:
    """``skills/python-backend`` of the repository containing ``start``."""
    for folder in (start, *start.parents):
        if (folder / SKILL_REL / "SKILL.md").is_file():
            return folder / SKILL_REL
    raise ConfigError(str(start), 0, f"no {SKILL_REL.as_posix()}/SKILL.md here or in any parent folder")


def main_index(argv: list[str] | None = None) -> int:
    """``fenceproof index [--check] [--skill DIR]``: 0 in sync or written, 1 stale (with --check), 2 bad input."""
    parser = argparse.ArgumentParser(
        prog="fenceproof index",
        description="Regenerate the rule index in SKILL.md, the rule lists in rules/_sections.md and the "
        "counts in metadata.json from the rules' frontmatter.",
    )
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a file is stale")
    parser.add_argument("--skill", type=Path, help="the skill folder (default: skills/python-backend)")
    args = parser.parse_args(argv)
    try:
        skill_dir = args.skill.resolve() if args.skill else find_skill_dir(Path.cwd())
        if args.check:
            diffs = stale(skill_dir)
            for diff in diffs:
                sys.stdout.write(diff if diff.endswith("\n") else diff + "\n")
            if diffs:
                print(
                    f"{len(diffs)} generated file(s) out of date: run `fenceproof index` and commit the result."
                )
                return 1
            print("Rule index, _sections.md and metadata.json counts are up to date.")
            return 0
        changed = write(skill_dir)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in changed:
        print(f"wrote {_rel(skill_dir, path)}")
    if not changed:
        print("Nothing to do: the generated parts are up to date.")
    return 0
