"""The skill's Markdown files: their frontmatter, checked against the schemas, and their blocks."""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from fenceproof.blocks import extract, frontmatter_lines
from fenceproof.models import Block, ConfigError, Document
from fenceproof.schemas import check

SKILL_DIR = "skills/python-backend"  # the default skill folder, when pyproject.toml names none
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
    skill_dir: Path  # the first (usually the only) skill folder
    documents: list[Document]
    sections: list[Section]  # the first skill's categories ([] for a skill without rules/_sections.md)
    skill_dirs: list[Path] = field(default_factory=list)  # every skill folder, in configuration order

    def rules(self) -> list[Document]:
        return [d for d in self.documents if d.kind == "rule"]

    def blocks(self) -> list[Block]:
        return [b for d in self.documents for b in d.blocks]


def configured_skills(root: Path) -> list[str] | None:
    """``[tool.fenceproof] skills = [...]`` of ``root/pyproject.toml``; None when it names none."""
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        return None
    try:
        data = tomllib.loads(pyproject.read_text("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(relpath(pyproject, root), 1, f"not valid TOML: {error}") from None
    config = data.get("tool", {}).get("fenceproof")
    if config is None:
        return None
    skills = config.get("skills")
    if not isinstance(skills, list) or not skills or not all(isinstance(s, str) and s for s in skills):
        raise ConfigError(
            "pyproject.toml",
            1,
            '[tool.fenceproof] skills must be a list of folders, e.g. ["skills/my-skill"]',
        )
    return skills


def skill_folders(root: Path) -> list[str]:
    """The skill folders of the repository at ``root``, relative to it."""
    return configured_skills(root) or [SKILL_DIR]


def find_repo_root(start: Path | None = None) -> Path:
    """The nearest folder at or above ``start`` with ``[tool.fenceproof]`` in pyproject.toml or the default
    skill folder."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if configured_skills(folder) is not None or (folder / SKILL_DIR / "SKILL.md").is_file():
            return folder
    raise ConfigError(
        str(here),
        1,
        f"no skill here: expected {SKILL_DIR}/SKILL.md, or [tool.fenceproof] skills = [...] in a pyproject.toml, "
        "in this folder or a parent",
    )


def relpath(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
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


def kind_of(rel_in_skill: str, structured: bool = True) -> str:
    """What a file is for: a rule, a reference, ... (only SKILL.md and "other" in a skill without
    ``rules/_sections.md``)."""
    parts = rel_in_skill.split("/")
    if parts == ["SKILL.md"]:
        return "skill"
    if not structured:
        return "other"
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


def load_document(path: Path, root: Path, skill_dir: Path, structured: bool = True) -> Document:
    rel = relpath(path, root)
    try:
        text = path.read_text("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(rel, 1, f"not UTF-8 text: {error.reason}") from None
    kind = kind_of(relpath(path, skill_dir), structured)
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


def _load_skill(root: Path, skill_dir: Path) -> tuple[list[Section], list[Path]]:
    """Check a skill folder's own files; its categories (if it has rules/_sections.md) and Markdown files."""
    skill_rel = relpath(skill_dir, root)
    if not (skill_dir / "SKILL.md").is_file():
        raise ConfigError(f"{skill_rel}/SKILL.md", 1, "file is missing: every skill folder has a SKILL.md")
    sections: list[Section] = []
    sections_path = skill_dir / "rules" / "_sections.md"
    if sections_path.is_file():
        sections = parse_sections(sections_path.read_text("utf-8"), relpath(sections_path, root))
    elif (skill_dir / "rules").is_dir():
        raise ConfigError(relpath(sections_path, root), 1, "file is missing: it declares the categories")
    if (skill_dir / "metadata.json").exists() or sections:
        check_json(skill_dir / "metadata.json", root, "metadata")
    return sections, sorted(skill_dir.rglob("*.md"))


def load_corpus(root: Path | None = None, paths: list[Path] | None = None) -> Corpus:
    """Read and check the skills. ``paths`` (files or folders) narrows which documents are returned."""
    root = find_repo_root(root)
    skill_dirs = [root / rel for rel in skill_folders(root)]
    for name in ("plugin", "marketplace"):  # the Claude Code manifests, where the repository ships them
        manifest = root / ".claude-plugin" / f"{name}.json"
        if manifest.exists():
            check_json(manifest, root, name)
    wanted = [p.resolve() for p in paths or []]
    for p in wanted:
        if not p.exists():
            raise ConfigError(str(p), 1, "no such file or folder")
    documents: list[Document] = []
    first_sections: list[Section] | None = None
    for skill_dir in skill_dirs:
        sections, files = _load_skill(root, skill_dir)
        first_sections = sections if first_sections is None else first_sections
        if wanted:
            files = [f for f in files if any(f.resolve() == w or w in f.resolve().parents for w in wanted)]
        for path in files:
            document = load_document(path, root, skill_dir, structured=bool(sections))
            if document.kind == "skill":
                _check_skill(document, skill_dir)
            elif document.kind == "rule":
                _check_rule(document, sections)
            documents.append(document)
    if wanted and not documents:
        folders = ", ".join(relpath(d, root) for d in skill_dirs)
        raise ConfigError(relpath(wanted[0], root), 1, f"no Markdown files of {folders} here")
    return Corpus(
        root=root,
        skill_dir=skill_dirs[0],
        documents=documents,
        sections=first_sections or [],
        skill_dirs=skill_dirs,
    )
