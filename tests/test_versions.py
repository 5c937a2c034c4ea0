"""One version number, and manifests that match their schemas."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest
import yaml
from conftest import REPO_ROOT, SKILL_DIR

SCHEMAS = REPO_ROOT / "src" / "fenceproof" / "schemas"
# Marketplace names Claude Code reserves or Claude Desktop rejects (research/skill-and-plugin-formats.md).
RESERVED = {
    "claude-plugins-official",
    "claude-code-plugins",
    "agent-skills",
    "anthropic-agent-skills",
    "org",
    "org-provisioned",
    "unknown",
}


def _json(path: Path) -> dict[str, object]:
    return json.loads(path.read_text(encoding="utf-8"))


def _skill_frontmatter(skill_dir: Path) -> dict[str, object]:
    return yaml.safe_load((skill_dir / "SKILL.md").read_text(encoding="utf-8").split("---\n", 2)[1])


def versions(root: Path) -> dict[str, str]:
    """Every place the version is written, and what it says there."""
    plugin = _json(root / ".claude-plugin" / "plugin.json")
    market = _json(root / ".claude-plugin" / "marketplace.json")
    found = {".claude-plugin/plugin.json": str(plugin.get("version"))}
    for entry in market["plugins"]:  # type: ignore[union-attr]
        if entry["name"] == plugin["name"]:
            found[".claude-plugin/marketplace.json"] = str(entry.get("version"))
    skill = root / "skills" / "python-backend"
    found["skills/python-backend/metadata.json"] = str(_json(skill / "metadata.json").get("version"))
    meta = _skill_frontmatter(skill).get("metadata") or {}
    if "version" in meta:  # type: ignore[operator]
        found["skills/python-backend/SKILL.md metadata.version"] = str(meta["version"])  # type: ignore[index]
    return found


def test_one_version_everywhere() -> None:
    found = versions(REPO_ROOT)
    assert len(found) >= 3
    assert len(set(found.values())) == 1, f"versions drifted: {found}"


def test_a_drifting_version_is_caught(tmp_path: Path) -> None:
    for rel in (".claude-plugin", "skills/python-backend"):
        shutil.copytree(REPO_ROOT / rel, tmp_path / rel)
    market_path = tmp_path / ".claude-plugin" / "marketplace.json"
    market = _json(market_path)
    market["plugins"][0]["version"] = "9.9.9"  # type: ignore[index]
    market_path.write_text(json.dumps(market), encoding="utf-8")
    found = versions(tmp_path)
    assert found[".claude-plugin/marketplace.json"] == "9.9.9"
    assert len(set(found.values())) == 2


@pytest.mark.parametrize(
    ("document", "schema"),
    [
        (".claude-plugin/plugin.json", "plugin.schema.json"),
        (".claude-plugin/marketplace.json", "marketplace.schema.json"),
        ("skills/python-backend/metadata.json", "metadata.schema.json"),
    ],
)
def test_manifests_match_their_schemas(document: str, schema: str) -> None:
    jsonschema.validate(_json(REPO_ROOT / document), _json(SCHEMAS / schema))


def test_skill_frontmatter_uses_spec_keys_only() -> None:
    fm = _skill_frontmatter(SKILL_DIR)
    jsonschema.validate(fm, _json(SCHEMAS / "skill.schema.json"))
    assert fm["name"] == SKILL_DIR.name


def test_marketplace_lists_this_repository_as_the_plugin() -> None:
    plugin = _json(REPO_ROOT / ".claude-plugin" / "plugin.json")
    market = _json(REPO_ROOT / ".claude-plugin" / "marketplace.json")
    assert market["name"] not in RESERVED
    assert "claude" not in str(market["name"]) and "anthropic" not in str(market["name"])
    entries = [e for e in market["plugins"] if e["name"] == plugin["name"]]  # type: ignore[union-attr]
    assert len(entries) == 1
    assert entries[0]["source"] == "./"
    assert plugin["name"] == "python-backend"
    assert plugin["license"] == "MIT"


def test_metadata_records_the_versions_the_corpus_runs_with() -> None:
    """metadata.json's verifiedWith is what `fenceproof verify` runs the corpus with: the locked libraries."""
    from importlib import metadata

    recorded = json.loads((SKILL_DIR / "metadata.json").read_text())["verifiedWith"]
    libraries = {k: v for k, v in recorded.items() if k not in ("python", "postgresql")}
    assert libraries, "metadata.json records no library versions"
    installed = {name: metadata.version(name) for name in libraries}
    assert libraries == installed, "update verifiedWith in metadata.json to the locked versions"


# Libraries the corpus needs without importing them by name, and the text in the skill that needs them.
USED_WITHOUT_IMPORT = {
    "greenlet": "sqlalchemy.ext.asyncio",  # SQLAlchemy's asyncio extension runs on it
    "psycopg": "postgresql+psycopg://",  # SQLAlchemy's psycopg dialect
    "orjson": "ORJSONResponse",  # renders with it
}


def _imported_top_level_modules(code: str) -> set[str]:
    import ast

    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set()
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    return names


def test_metadata_lists_only_libraries_the_skill_uses() -> None:
    """Every library in verifiedWith is imported by a block or the template, or needed by text the skill has."""
    from fenceproof.blocks import extract

    code = [p.read_text(encoding="utf-8") for p in sorted((SKILL_DIR / "assets").glob("*.py"))]
    texts = [p.read_text(encoding="utf-8") for p in sorted(SKILL_DIR.rglob("*.md"))]
    for path, text in zip(sorted(SKILL_DIR.rglob("*.md")), texts, strict=True):
        code += [b.code for b in extract(text, path, path.name) if b.lang == "python"]
    imported = set().union(*(_imported_top_level_modules(c) for c in code))
    recorded = json.loads((SKILL_DIR / "metadata.json").read_text())["verifiedWith"]
    unused = [
        name
        for name in recorded
        if name not in ("python", "postgresql")
        and name.replace("-", "_") not in imported
        and not any(USED_WITHOUT_IMPORT.get(name, "\0") in t for t in texts + code)
    ]
    assert not unused, f"metadata.json verifiedWith lists libraries no block uses: {unused}"
