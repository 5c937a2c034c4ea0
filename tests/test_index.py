"""The generated parts of SKILL.md, rules/_sections.md and metadata.json follow the rules' frontmatter; the
checklists link every rule."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import SKILL_DIR
from skill_factory import copy_with_long_rules

from fenceproof import agents_index
from fenceproof.agents_index import AGENTS_INDEX, AGENTS_INDEX_MAX_CHARS, INSTALLED_AT, PHRASE_MIN_CHARS
from fenceproof.corpus import parse_sections, read_frontmatter
from fenceproof.index import (
    LINE_MAX_CHARS,
    SKILL_END,
    SKILL_START,
    Rule,
    main_index,
    rule_files,
    stale,
    write,
)


@pytest.fixture
def skill_copy(tmp_path: Path) -> Path:
    """A regenerated scratch copy of the skill in a repository-shaped folder (messages name skills/python-backend/).

    Regenerated first, so these tests check the mechanism whatever the state of the committed files.
    """
    copy = tmp_path / "skills" / "python-backend"
    shutil.copytree(SKILL_DIR, copy)
    write(copy)
    return copy


def _rule_frontmatter(path: Path) -> dict[str, object]:
    return read_frontmatter(path.read_text(encoding="utf-8"), path.name)


def _section_ids(skill_dir: Path) -> list[str]:
    return [
        s.id for s in parse_sections((skill_dir / "rules" / "_sections.md").read_text(encoding="utf-8"), "")
    ]


def _outside_markers(text: str) -> str:
    """The hand-written parts: everything except what lies between generated markers."""
    return re.sub(
        r"(<!-- rules:[a-z0-9-:]*start -->\n).*?(<!-- rules:[a-z0-9-:]*end -->)", r"\1\2", text, flags=re.S
    )


def test_committed_files_match_what_the_rules_generate() -> None:
    diffs = stale(SKILL_DIR)
    assert not diffs, "run `fenceproof index`:\n" + "\n".join(diffs)


def test_check_command_passes_on_the_repository(capsys: pytest.CaptureFixture[str]) -> None:
    assert main_index(["--check", "--root", str(SKILL_DIR)]) == 0, capsys.readouterr().out


def test_every_rule_is_indexed_once_with_a_link_that_resolves() -> None:
    skill = (SKILL_DIR / "SKILL.md").read_text(encoding="utf-8")
    index = skill.split(SKILL_START, 1)[1].split(SKILL_END, 1)[0]
    links = re.findall(r"\]\((rules/[^)]+\.md)\)", index)
    assert sorted(links) == sorted(f"rules/{p.name}" for p in rule_files(SKILL_DIR))
    for link in links:
        assert (SKILL_DIR / link).is_file(), link


def test_index_follows_the_order_of_sections() -> None:
    order = _section_ids(SKILL_DIR)
    skill = (SKILL_DIR / "SKILL.md").read_text(encoding="utf-8")
    index = skill.split(SKILL_START, 1)[1].split(SKILL_END, 1)[0]
    seen = [
        _rule_frontmatter(SKILL_DIR / link)["category"] for link in re.findall(r"\]\((rules/[^)]+)\)", index)
    ]
    positions = [order.index(c) for c in seen]
    assert positions == sorted(positions)


def test_each_index_line_says_when_to_load_the_rule_within_its_budget() -> None:
    """Topic, the start of the first symptom and an error phrase Python prints verbatim, in one short line."""
    skill = (SKILL_DIR / "SKILL.md").read_text(encoding="utf-8")
    for path in rule_files(SKILL_DIR):
        fm = _rule_frontmatter(path)
        line = next(x for x in skill.splitlines() if f"](rules/{path.name})" in x)
        assert len(line) <= LINE_MAX_CHARS, line
        topic = path.stem.split("-", 1)[1].replace("-", " ")
        assert line.startswith(f"- [{topic}](rules/{path.name}): "), line
        symptom = " ".join(str(fm["symptoms"][0]).split())  # type: ignore[index]
        shown = line.split("): ", 1)[1].rsplit("; `", 1)[0]
        assert len(shown) >= 30 and symptom.startswith(shown.removesuffix("…")), (shown, symptom)
        phrase = line.rsplit("; `", 1)[1].removesuffix("`")
        errors = [" ".join(str(e).split()) for e in fm["errors"]]  # type: ignore[attr-defined]
        assert any(phrase in e for e in errors), (phrase, errors)


def test_counts_are_the_files_on_disk() -> None:
    counts = json.loads((SKILL_DIR / "metadata.json").read_text(encoding="utf-8"))["counts"]
    assert counts["rules"] == len(rule_files(SKILL_DIR))
    for folder in ("references", "checklists", "examples"):
        folder_path = SKILL_DIR / folder
        on_disk = [p for p in folder_path.glob("*") if p.is_file()] if folder_path.is_dir() else []
        assert counts[folder] == len(on_disk), folder
    assert counts["categories"] == len(_section_ids(SKILL_DIR))


def _checklist_links(checklist: Path) -> list[str]:
    """The files a checklist's Markdown links point to (outside code blocks, relative, without #anchors)."""
    prose = re.sub(r"^```.*?^```", "", checklist.read_text(encoding="utf-8"), flags=re.M | re.S)
    targets = [target.split("#", 1)[0] for target in re.findall(r"\]\(([^)\s]+)\)", prose)]
    return [target for target in targets if target and ":" not in target]


@pytest.mark.parametrize("checklist", ["production-readiness.md", "code-review.md"])
def test_readiness_and_review_checklists_link_every_rule(checklist: str) -> None:
    path = SKILL_DIR / "checklists" / checklist
    linked = {(path.parent / target).resolve() for target in _checklist_links(path)}
    missing = [rule.name for rule in rule_files(SKILL_DIR) if rule.resolve() not in linked]
    assert not missing, f"checklists/{checklist} has no item linking {missing}"


def test_every_checklist_link_points_to_an_existing_file() -> None:
    checklists = sorted((SKILL_DIR / "checklists").glob("*.md"))
    assert checklists and all(_checklist_links(path) for path in checklists)
    broken = [
        f"{path.name}: {target}"
        for path in checklists
        for target in _checklist_links(path)
        if not (path.parent / target).is_file()
    ]
    assert not broken, broken


def test_changing_a_rule_title_and_symptom_makes_the_check_fail_until_regenerated(
    skill_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rule = rule_files(skill_copy)[0]
    fm = _rule_frontmatter(rule)
    text = rule.read_text(encoding="utf-8")
    renamed = re.sub(r"^title:.*$", "title: A renamed rule for the test", text, count=1, flags=re.M)
    renamed = renamed.replace(str(fm["symptoms"][0]), "a renamed symptom for the test", 1)  # type: ignore[index]
    assert renamed != text
    rule.write_text(renamed, encoding="utf-8")

    assert main_index(["--check", "--root", str(skill_copy)]) == 1
    out = capsys.readouterr().out
    assert "skills/python-backend/SKILL.md (committed)" in out
    assert "skills/python-backend/rules/_sections.md (committed)" in out
    assert f"+- [{rule.stem.split('-', 1)[1].replace('-', ' ')}](rules/{rule.name}): a renamed symptom" in out
    assert "+- [A renamed rule for the test](" in out
    assert "fenceproof index" in out

    before = {
        p: p.read_text(encoding="utf-8") for p in (skill_copy / "SKILL.md", skill_copy / "rules/_sections.md")
    }
    assert main_index(["--root", str(skill_copy)]) == 0
    assert main_index(["--check", "--root", str(skill_copy)]) == 0
    skill = (skill_copy / "SKILL.md").read_text(encoding="utf-8")
    assert f"(rules/{rule.name}): a renamed symptom for the test; `" in skill
    sections = (skill_copy / "rules/_sections.md").read_text(encoding="utf-8")
    assert f"[A renamed rule for the test]({rule.name})" in sections
    for path, old in before.items():
        new = path.read_text(encoding="utf-8")
        assert _outside_markers(new) == _outside_markers(old), f"hand-written part of {path.name} changed"


def test_adding_a_rule_makes_the_check_fail_until_regenerated(skill_copy: Path) -> None:
    source = rule_files(skill_copy)[0]
    fm = _rule_frontmatter(source)
    fm["title"] = "Close what you open in the test rule"
    fm["symptoms"] = ["the brand-new symptom of the test rule"]
    body = source.read_text(encoding="utf-8").split("\n---\n", 1)[1]
    new_rule = skill_copy / "rules" / f"{fm['category']}-zz-added-for-test.md"
    new_rule.write_text("---\n" + yaml.safe_dump(fm, sort_keys=False) + "---\n" + body, encoding="utf-8")
    rules_before = json.loads((skill_copy / "metadata.json").read_text(encoding="utf-8"))["counts"]["rules"]

    diffs = stale(skill_copy)
    stale_files = {d.splitlines()[0].split()[1] for d in diffs}
    assert stale_files == {
        "skills/python-backend/SKILL.md",
        "skills/python-backend/AGENTS-index.md",
        "skills/python-backend/rules/_sections.md",
        "skills/python-backend/metadata.json",
    }

    changed = write(skill_copy)
    assert len(changed) == 4
    assert stale(skill_copy) == []
    skill = (skill_copy / "SKILL.md").read_text(encoding="utf-8")
    assert f"](rules/{new_rule.name}): the brand-new symptom of the test rule; `" in skill
    assert f"\n- {new_rule.name}: `" in (skill_copy / AGENTS_INDEX).read_text(encoding="utf-8")
    assert f"]({new_rule.name})" in (skill_copy / "rules" / "_sections.md").read_text(encoding="utf-8")
    counts = json.loads((skill_copy / "metadata.json").read_text(encoding="utf-8"))["counts"]
    assert counts["rules"] == rules_before + 1


def test_adding_a_reference_changes_the_counts(skill_copy: Path) -> None:
    (skill_copy / "references").mkdir(exist_ok=True)
    page = '---\ntitle: A reference\ndescription: "Load it when the test needs a reference."\n---\n# A reference\n'
    (skill_copy / "references" / "zz-added-for-test.md").write_text(page, encoding="utf-8")
    assert [d.splitlines()[0].split()[1] for d in stale(skill_copy)] == [
        "skills/python-backend/metadata.json"
    ]
    write(skill_copy)
    assert stale(skill_copy) == []


def test_json_formatting_alone_is_not_stale(skill_copy: Path) -> None:
    meta = skill_copy / "metadata.json"
    meta.write_text(json.dumps(json.loads(meta.read_text(encoding="utf-8")), indent=4), encoding="utf-8")
    assert stale(skill_copy) == []


def test_sections_markers_are_added_when_missing(skill_copy: Path) -> None:
    sections = skill_copy / "rules" / "_sections.md"
    stripped = re.sub(
        r"\n<!-- rules:[a-z0-9-]+:start -->\n.*?<!-- rules:[a-z0-9-]+:end -->\n",
        "",
        sections.read_text(),
        flags=re.S,
    )
    sections.write_text(stripped, encoding="utf-8")
    assert "<!-- rules:" not in sections.read_text(encoding="utf-8")
    assert stale(skill_copy) != []
    write(skill_copy)
    assert stale(skill_copy) == []
    for cid in _section_ids(skill_copy):
        assert f"<!-- rules:{cid}:start -->" in sections.read_text(encoding="utf-8")


def test_unknown_category_is_a_usage_error_naming_the_rule(
    skill_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rule = rule_files(skill_copy)[0]
    category = _rule_frontmatter(rule)["category"]
    rule.write_text(rule.read_text().replace(f"category: {category}", "category: nosuchcategory", 1))
    assert main_index(["--check", "--root", str(skill_copy)]) == 2
    err = capsys.readouterr().err
    assert f"skills/python-backend/rules/{rule.name}:" in err
    assert "nosuchcategory" in err


def test_missing_skill_markers_are_a_usage_error(
    skill_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    skill = skill_copy / "SKILL.md"
    skill.write_text(skill.read_text().replace(SKILL_END, ""), encoding="utf-8")
    assert main_index(["--root", str(skill_copy)]) == 2
    assert "skills/python-backend/SKILL.md" in capsys.readouterr().err


def test_malformed_rule_frontmatter_names_file_and_line(
    skill_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rule = rule_files(skill_copy)[0]
    lines = rule.read_text().splitlines()
    lines[2] = "category: [unclosed"
    rule.write_text("\n".join(lines) + "\n")
    assert main_index(["--check", "--root", str(skill_copy)]) == 2
    assert f"skills/python-backend/rules/{rule.name}:" in capsys.readouterr().err


def test_agents_index_lists_every_rule_once_with_phrases_its_errors_contain() -> None:
    text = (SKILL_DIR / AGENTS_INDEX).read_text(encoding="utf-8")
    assert len(text) <= AGENTS_INDEX_MAX_CHARS
    assert f"`{INSTALLED_AT}/rules/<file>`" in text and f"{INSTALLED_AT}/scripts/find_rule.py" in text
    lines = [line for line in text.splitlines() if line.startswith("- ")]
    assert sorted(line[2:].split(":", 1)[0] for line in lines) == sorted(
        p.name for p in rule_files(SKILL_DIR)
    )
    for line in lines:
        name, listed = line[2:].split(": ", 1)
        errors = [" ".join(str(e).split()) for e in _rule_frontmatter(SKILL_DIR / "rules" / name)["errors"]]  # type: ignore[attr-defined]
        phrases = re.findall(r"`([^`]+)`", listed)
        assert phrases, line
        for phrase in phrases:
            assert any(phrase in e for e in errors), (name, phrase)


def test_agents_index_is_stale_when_missing_or_edited(skill_copy: Path) -> None:
    index = skill_copy / AGENTS_INDEX
    index.write_text(index.read_text(encoding="utf-8") + "- a hand-added line\n", encoding="utf-8")
    assert [d.splitlines()[0].split()[1] for d in stale(skill_copy)] == [
        f"skills/python-backend/{AGENTS_INDEX}"
    ]
    index.unlink()
    assert [d.splitlines()[0].split()[1] for d in stale(skill_copy)] == [
        f"skills/python-backend/{AGENTS_INDEX}"
    ]
    assert write(skill_copy) == [index]
    assert stale(skill_copy) == []


def test_agents_index_follows_an_edited_error(skill_copy: Path) -> None:
    rule = rule_files(skill_copy)[0]
    first = str(_rule_frontmatter(rule)["errors"][0])  # type: ignore[index]
    rule.write_text(
        rule.read_text(encoding="utf-8").replace(first, "RuntimeError: the zebra crossing is closed", 1)
    )
    assert f"skills/python-backend/{AGENTS_INDEX}" in {
        d.splitlines()[0].split()[1] for d in stale(skill_copy)
    }
    write(skill_copy)
    text = (skill_copy / AGENTS_INDEX).read_text(encoding="utf-8")
    assert f"- {rule.name}: `the zebra crossing is closed`" in text


def test_agents_index_with_twenty_long_rules_fits_and_names_each(tmp_path: Path) -> None:
    copy = copy_with_long_rules(SKILL_DIR, tmp_path, 20)
    text = (copy / AGENTS_INDEX).read_text(encoding="utf-8")
    assert len(text) <= AGENTS_INDEX_MAX_CHARS
    rules = rule_files(copy)
    assert len(rules) == 20
    for rule in rules:
        line = next(x for x in text.splitlines() if x.startswith(f"- {rule.name}: "))
        first = re.findall(r"`([^`]+)`", line)[0]
        assert len(first) >= PHRASE_MIN_CHARS and first in str(_rule_frontmatter(rule)["errors"][0])  # type: ignore[index]
    assert stale(copy) == []


def test_agents_index_render_cuts_first_phrases_before_dropping_any() -> None:
    rules = [
        Rule(
            f"asyncio-r{k}.md",
            "t",
            "asyncio",
            "HIGH",
            "",
            ("s",),
            (f"RuntimeError: {w} went wrong here and there",),
        )
        for k, w in enumerate(["alpha", "bravo", "charlie"])
    ]
    full = agents_index.render(rules)
    assert "`alpha went wrong here and there`" in full
    tight = agents_index.render(rules, limit=len(full) - 12)
    assert len(tight) <= len(full) - 12
    assert "`alpha went wrong here`" in tight and "`charlie went wrong here`" in tight
