from pathlib import Path

import pytest
from skill_factory import make_skill, rule_path

from fenceproof.corpus import load_corpus
from fenceproof.models import ConfigError

GOOD = """# Rule

```python
print("hello")
```
"""


def test_loads_documents_kinds_and_sections(tmp_path: Path) -> None:
    make_skill(tmp_path, {"asyncio-a.md": GOOD})
    corpus = load_corpus(tmp_path)
    kinds = {d.rel.rsplit("/", 1)[-1]: d.kind for d in corpus.documents}
    assert kinds == {"SKILL.md": "skill", "_sections.md": "sections", "asyncio-a.md": "rule"}
    assert [(s.id, s.title, s.impact, s.order) for s in corpus.sections] == [
        ("asyncio", "Asyncio", "HIGH", 1),
        ("sqlalchemy", "SQLAlchemy", "HIGH", 2),
    ]
    assert corpus.rules()[0].frontmatter["category"] == "asyncio"
    assert [(b.rel, b.line) for b in corpus.blocks()] == [("skills/python-backend/rules/asyncio-a.md", 12)]


def _error(tmp_path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_corpus(tmp_path)
    return str(caught.value)


def test_malformed_frontmatter_names_file_and_line(tmp_path: Path) -> None:
    make_skill(tmp_path, {"asyncio-a.md": GOOD})
    path = rule_path(tmp_path, "asyncio-a.md")
    path.write_text(path.read_text().replace("impact: HIGH", "impact: [HIGH"), "utf-8")
    message = _error(tmp_path)
    assert message.startswith("skills/python-backend/rules/asyncio-a.md:")
    assert "frontmatter is not valid YAML" in message


def test_unknown_frontmatter_key_and_bad_impact(tmp_path: Path) -> None:
    make_skill(tmp_path, {"asyncio-a.md": GOOD})
    path = rule_path(tmp_path, "asyncio-a.md")
    path.write_text(path.read_text().replace("impact: HIGH", "impact: HUGE\nauthor: me"), "utf-8")
    message = _error(tmp_path)
    assert "skills/python-backend/rules/asyncio-a.md:2: frontmatter: unknown key 'author'" in message


def test_rule_category_must_be_declared(tmp_path: Path) -> None:
    make_skill(tmp_path, {"pooling-a.md": GOOD})
    assert "category 'pooling' is not in rules/_sections.md" in _error(tmp_path)


def test_skill_md_takes_spec_keys_only_and_its_folder_name(tmp_path: Path) -> None:
    make_skill(tmp_path, skill_md="---\nname: python-backend\ndescription: x\nversion: 1\n---\n")
    assert "SKILL.md:2: frontmatter: unknown key 'version'" in _error(tmp_path)
    make_skill(tmp_path, skill_md="---\nname: other\ndescription: x\n---\n")
    assert "must equal the skill folder's name 'python-backend'" in _error(tmp_path)
    make_skill(tmp_path, skill_md="---\nname: python-backend\ndescription: uses <b>tags</b>\n---\n")
    assert "SKILL.md:2: frontmatter 'description'" in _error(tmp_path)


def test_metadata_json_is_checked(tmp_path: Path) -> None:
    skill = make_skill(tmp_path)
    (skill / "metadata.json").write_text('{"version": "1"}', "utf-8")
    assert _error(tmp_path).startswith("skills/python-backend/metadata.json:1: metadata.json")


def test_paths_narrow_the_documents(tmp_path: Path) -> None:
    make_skill(tmp_path, {"asyncio-a.md": GOOD, "sqlalchemy-b.md": GOOD})
    corpus = load_corpus(tmp_path, [rule_path(tmp_path, "sqlalchemy-b.md")])
    assert [d.rel for d in corpus.documents] == ["skills/python-backend/rules/sqlalchemy-b.md"]


def test_plugin_manifests_are_checked_when_present(tmp_path: Path) -> None:
    make_skill(tmp_path)
    (tmp_path / ".claude-plugin").mkdir()
    (tmp_path / ".claude-plugin" / "plugin.json").write_text('{"name": "Python Backend"}', "utf-8")
    assert _error(tmp_path).startswith(".claude-plugin/plugin.json:1: plugin.json")
    (tmp_path / ".claude-plugin" / "plugin.json").write_text('{"name": "x",\n  "version": 1,}', "utf-8")
    assert _error(tmp_path).startswith(".claude-plugin/plugin.json:2: not valid JSON")
