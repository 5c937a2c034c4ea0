"""The skill's Markdown files: their frontmatter, checked against the schemas, and their blocks."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from fenceproof.blocks import extract, frontmatter_lines
from fenceproof.models import Block, ConfigError, Document
from fenceproof.schemas import check

SKILL_DIR = "skills/python-backend"
_SECTION = re.compile(r"^## ([a-z][a-z0-9-]*): (.+?)\s*$")
_FIELD = re.compile(r"^\*\*(Impact|Description):\*\*\s*(.+?)\s*$")
_KINDS = {"references": "reference", "checklists": "checklist", "examples": "example"}


@dataclass(frozen=True)
class Section:
    """A category of rules, as declared in ``rules/_sections.md``."""

    id: str
    title: str
    impact: str
    description: str
    order: int
    line: int


@dataclass
class Corpus:
    root: Path  # the repository root
    skill_dir: Path
    documents: list[Document]
    sections: list[Section]

    def rules(self) -> list[Document]:
        return [d for d in self.documents if d.kind == "rule"]

    def blocks(self) -> list[Block]:
        return [b for d in self.documents for b in d.blocks]


def find_repo_root(start: Path | None = None) -> Path:
    """The nearest folder at or above ``start`` that holds the skill."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / SKILL_DIR / "SKILL.md").is_file():
            return folder
    raise ConfigError(str(here), 1, f"no {SKILL_DIR}/SKILL.md here or in any parent folder")


def _resolve(path: Path) -> Path:
    """``path.resolve()``, or the path itself for a symlink loop (RuntimeError on 3.11, OSError later)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path.absolute()


def relpath(path: Path, root: Path) -> str:
    """``path`` relative to ``root``: as written (a symlink is named, not its target), else resolved."""
    for candidate in (path.absolute(), _resolve(path)):
        try:
            return candidate.relative_to(root).as_posix()
        except ValueError:
            continue
    return path.as_posix()


def read_frontmatter(text: str, rel: str) -> dict[str, object]:
    """The YAML between the first two ``---`` lines, or {} when the file has none."""
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        return {}
    end = frontmatter_lines(lines) - 1  # the closing --- line
    if end < 0:
        raise ConfigError(rel, 1, "frontmatter opened with --- is never closed")
    try:
        data = yaml.safe_load("\n".join(lines[1:end]))
    except yaml.YAMLError as error:
        # Where the broken construct began (an unclosed "[" ...), else where the parser gave up.
        mark = getattr(error, "context_mark", None) or getattr(error, "problem_mark", None)
        line = mark.line + 2 if mark is not None else 1
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(rel, line, f"frontmatter is not valid YAML: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(rel, 2, "frontmatter must be a mapping of keys to values")
    return data


def kind_of(rel_in_skill: str) -> str:
    parts = rel_in_skill.split("/")
    if parts == ["SKILL.md"]:
        return "skill"
    if parts[0] == "rules" and len(parts) == 2:
        return {"_sections.md": "sections", "_template.md": "template"}.get(parts[1], "rule")
    return _KINDS.get(parts[0], "other")


def parse_sections(text: str, rel: str) -> list[Section]:
    """The categories: each ``## <id>: <Title>`` with its ``**Impact:**`` and ``**Description:**`` lines."""
    sections: list[Section] = []
    current: dict[str, object] | None = None
    for number, line in enumerate(text.split("\n"), start=1):
        heading = _SECTION.match(line)
        if heading:
            current = {"id": heading.group(1), "title": heading.group(2), "line": number}
            sections.append(current)  # type: ignore[arg-type]
            continue
        found = _FIELD.match(line)
        if found and current is not None:
            current[found.group(1).lower()] = found.group(2)
    result = []
    for order, raw in enumerate(sections, start=1):
        for key in ("impact", "description"):
            if key not in raw:
                raise ConfigError(
                    rel, int(raw["line"]), f"category {raw['id']!r} has no **{key.title()}:** line"
                )  # type: ignore[arg-type]
        result.append(Section(order=order, **raw))  # type: ignore[arg-type]
    if not result:
        raise ConfigError(rel, 1, "no categories: expected headings like '## asyncio: Asyncio'")
    return result


def load_document(path: Path, root: Path, skill_dir: Path) -> Document:
    rel = relpath(path, root)
    try:
        data = path.read_bytes()
    except OSError as error:  # a dangling symlink, a symlink loop, unreadable
        what = "a symbolic link to nothing" if path.is_symlink() and error.errno == 2 else error.strerror
        raise ConfigError(rel, 1, f"cannot read the file: {what}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ConfigError(rel, line, f"not UTF-8 text: {error.reason} (byte {error.start + 1})") from None
    kind = kind_of(relpath(path, skill_dir))
    frontmatter = read_frontmatter(text, rel)
    schema = {"skill": "skill", "rule": "rule", "reference": "page", "checklist": "page", "example": "page"}
    if kind in schema:
        if not frontmatter:
            raise ConfigError(rel, 1, "no frontmatter: the file must start with a --- YAML block")
        check(schema[kind], frontmatter, rel, 2, "frontmatter")
    return Document(path=path, rel=rel, kind=kind, frontmatter=frontmatter, blocks=extract(text, path, rel))


def _check_skill(document: Document, skill_dir: Path) -> None:
    name = document.frontmatter.get("name")
    if name != skill_dir.name:
        raise ConfigError(
            document.rel, 2, f"name {name!r} must equal the skill folder's name {skill_dir.name!r}"
        )


def _check_rule(document: Document, sections: list[Section]) -> None:
    category = document.frontmatter["category"]
    ids = [s.id for s in sections]
    if category not in ids:
        raise ConfigError(
            document.rel, 2, f"category {category!r} is not in rules/_sections.md ({', '.join(ids)})"
        )
    if not document.path.name.startswith(f"{category}-"):
        raise ConfigError(document.rel, 2, f"a rule of category {category!r} is named {category}-<topic>.md")


def check_json(path: Path, root: Path, schema: str) -> dict[str, object]:
    """Read a JSON file and check it against a schema, naming file and line on failure."""
    rel = relpath(path, root)
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigError(rel, 1, "file is missing") from None
    except json.JSONDecodeError as error:
        raise ConfigError(rel, error.lineno, f"not valid JSON: {error.msg}") from None
    check(schema, data, rel, 1, rel.rsplit("/", 1)[-1])
    return data


def load_corpus(root: Path | None = None, paths: list[Path] | None = None) -> Corpus:
    """Read and check the skill. ``paths`` (files or folders) narrows which documents are returned."""
    root = find_repo_root(root)
    skill_dir = root / SKILL_DIR
    sections_path = skill_dir / "rules" / "_sections.md"
    if not sections_path.is_file():
        raise ConfigError(relpath(sections_path, root), 1, "file is missing: it declares the categories")
    sections = parse_sections(sections_path.read_text("utf-8"), relpath(sections_path, root))
    check_json(skill_dir / "metadata.json", root, "metadata")
    for name in ("plugin", "marketplace"):  # the Claude Code manifests, where the repository ships them
        manifest = root / ".claude-plugin" / f"{name}.json"
        if manifest.exists():
            check_json(manifest, root, name)
    files = sorted(skill_dir.rglob("*.md"))
    if paths:
        wanted = [_resolve(p) for p in paths]
        for p in wanted:
            if not p.exists():
                raise ConfigError(str(p), 1, "no such file or folder")
        files = [f for f in files if any(_resolve(f) == w or w in _resolve(f).parents for w in wanted)]
        if not files:
            raise ConfigError(relpath(wanted[0], root), 1, f"no Markdown files of {SKILL_DIR} here")
    documents = []
    for path in files:
        document = load_document(path, root, skill_dir)
        if document.kind == "skill":
            _check_skill(document, skill_dir)
        elif document.kind == "rule":
            _check_rule(document, sections)
        documents.append(document)
    return Corpus(root=root, skill_dir=skill_dir, documents=documents, sections=sections)
