"""``fenceproof docs build``: staging, block statuses from the engine's report, badges, navigation, strict mode.

Each test builds a real site with Zensical from a small skill in a temporary repository. Reports here are
fixtures written into that temporary repository; they describe the fixture's own blocks.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml
from skill_factory import make_skill, rule_path

from fenceproof.corpus import load_corpus
from fenceproof.docs import DocsBuildError, build, main_docs
from fenceproof.models import OUTCOMES as OUTCOME_NAMES
from fenceproof.report import check_report

ROOT = Path(__file__).resolve().parents[1]

RULE = """\
# A rule for the tests

**Incorrect** (fails):

```python expect="raises:TypeError" match="unsupported"
None + 1
```

**Correct**:

```python
print(1 + 1)
```

A fragment:

```python mode="lint" reason="needs a running server"
import asyncio
```

```text
TypeError: unsupported operand type(s)
```

## Why

Because.
"""

OUTCOMES = {  # fence language/attributes -> the row a fixture report holds for it
    "raises": {"outcome": "proved", "message": "raised TypeError: unsupported operand type(s) for +"},
    "run": {"outcome": "passed"},
    "lint": {"outcome": "linted"},  # with the block's own reason
    "text": {"outcome": "skipped", "message": "text is shown, not run"},
}


def site_repo(root: Path, rules: dict[str, str], extra: dict[str, str] | None = None) -> Path:
    """A repository at ``root`` with the fixture skill, this repository's mkdocs.yml and overrides/."""
    make_skill(root, rules)
    for rel, text in (extra or {}).items():
        path = root / "skills" / "python-backend" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8")
    shutil.copy(ROOT / "mkdocs.yml", root / "mkdocs.yml")
    shutil.copytree(ROOT / "overrides", root / "overrides")
    return root


def write_report(root: Path, skip: set[tuple[str, int]] = frozenset(), failed: int | None = None) -> Path:
    """A report for every block of the fixture skill (except ``skip``), newer than every file."""
    rows = []
    for doc in load_corpus(root).documents:
        for block in doc.blocks:
            if (doc.rel, block.line) in skip:
                continue
            key = "text" if block.lang == "text" else "raises" if block.expect else block.mode
            row = {"outcome": "passed", "message": None, "reason": block.reason, **OUTCOMES.get(key, {})}
            if block.line == failed:
                row = {
                    "outcome": "failed",
                    "message": 'AssertionError: boom {"x": 1} <b> & C:\\tmp',
                    "reason": None,
                }
            rows.append(
                {"path": doc.rel, "line": block.line, "lang": block.lang, "kind": block.kind, "mode": block.mode,
                 "role": block.role, "expect": str(block.expect) if block.expect else None, "duration_s": 0.01,
                 "measured": {}, "stdout": "", "requires": None, "paste": None, "cached": False, **row}
            )  # fmt: skip
    report = root / "build" / "fenceproof" / "report.json"
    report.parent.mkdir(parents=True, exist_ok=True)
    summary = {"documents": 0, "blocks": len(rows), "wall_s": 0.0}
    summary.update({o: sum(r["outcome"] == o for r in rows) for o in OUTCOME_NAMES})
    data = {
        "postgres": {"server_version": "15.18", "source": "local"},
        "summary": summary,
        "timings": {},
        "environment": {"python": "3.11.7", "machine": "Linux x86_64"},
        "budget": [],
        "blocks": rows,
    }
    assert check_report(data) == [], check_report(data)
    report.write_text(json.dumps(data), "utf-8")
    newest = max(p.stat().st_mtime for p in (root / "skills").rglob("*.md"))
    os.utime(report, (newest + 5, newest + 5))
    return report


def staged(root: Path, rel: str) -> str:
    return (root / "build" / "docs-src" / rel).read_text("utf-8")


def page_html(root: Path, rel: str) -> str:
    return (root / "build" / "site" / rel.removesuffix(".md") / "index.html").read_text("utf-8")


def titles(page: str) -> list[tuple[str, str]]:
    """(outcome class, title text) of each code block of a built page."""
    found = re.findall(
        r'<div class="[^"]*\bfp-block fp-([a-z]+)[^"]*"><span class="filename">([^<]*)</span>', page
    )
    return [(outcome, html.unescape(text)) for outcome, text in found]


def test_each_block_shows_its_status_from_the_report(tmp_path: Path) -> None:
    site_repo(tmp_path, {"asyncio-a.md": RULE})
    write_report(tmp_path)
    build(tmp_path)
    text = staged(tmp_path, "rules/asyncio-a.md")
    assert "expect=" not in text and "mode=" not in text, "engine attributes must not reach the generator"
    assert titles(page_html(tmp_path, "rules/asyncio-a.md")) == [
        ("proved", "Proved: raised TypeError: unsupported operand type(s) for +"),
        ("passed", "Passed: ran clean"),
        ("linted", "Lint-only: needs a running server"),
        ("skipped", "Skipped: text is shown, not run"),
    ]
    html = page_html(tmp_path, "rules/asyncio-a.md")
    assert "Verified on PostgreSQL 15.18: 4 blocks (1 passed, 1 proved, 1 lint-only, 1 skipped)" in html


def test_rule_page_shows_impact_category_and_tags(tmp_path: Path) -> None:
    site_repo(tmp_path, {"sqlalchemy-a.md": RULE})
    build(tmp_path)
    html = page_html(tmp_path, "rules/sqlalchemy-a.md")
    badges = re.findall(r'<span class="fp-badge ([^"]+)"[^>]*>([^<]+)</span>', html)
    assert ("fp-impact fp-impact-high", "Impact: HIGH") in badges
    assert ("fp-category", "Category: SQLAlchemy") in badges  # the title from _sections.md, not the id
    assert ("fp-tag", "#test") in badges
    assert "TypeError: a test error" in html  # the frontmatter's errors are on the page, so search finds them


def test_page_without_a_report_says_it_is_not_verified(tmp_path: Path) -> None:
    site_repo(tmp_path, {"asyncio-a.md": RULE})
    build(tmp_path)
    html = page_html(tmp_path, "rules/asyncio-a.md")
    assert "Not verified: no engine report (run fenceproof verify)" in html
    assert {outcome for outcome, _ in titles(html)} == {"unverified"}


def test_report_older_than_the_file_does_not_count(tmp_path: Path) -> None:
    site_repo(tmp_path, {"asyncio-a.md": RULE})
    report = write_report(tmp_path)
    rule = rule_path(tmp_path, "asyncio-a.md")
    os.utime(report, (rule.stat().st_mtime - 60, rule.stat().st_mtime - 60))
    build(tmp_path)
    html = page_html(tmp_path, "rules/asyncio-a.md")
    assert "Not verified: the file changed after the last report" in html
    assert {outcome for outcome, _ in titles(html)} == {"unverified"}


def test_block_missing_from_the_report_is_marked_and_the_page_says_so(tmp_path: Path) -> None:
    site_repo(tmp_path, {"asyncio-a.md": RULE})
    first = load_corpus(tmp_path).rules()[0]
    write_report(tmp_path, skip={(first.rel, first.blocks[1].line)})
    build(tmp_path)
    html = page_html(tmp_path, "rules/asyncio-a.md")
    assert "Not verified: 1 of 4 blocks are not in the last report" in html
    assert [outcome for outcome, _ in titles(html)] == ["proved", "unverified", "linted", "skipped"]


def test_failed_block_makes_the_page_failing(tmp_path: Path) -> None:
    site_repo(tmp_path, {"asyncio-a.md": RULE})
    second = load_corpus(tmp_path).rules()[0].blocks[1]
    write_report(tmp_path, failed=second.line)
    build(tmp_path)
    html = page_html(tmp_path, "rules/asyncio-a.md")
    assert "Failing: 4 blocks (1 failed, 1 proved, 1 lint-only, 1 skipped)" in html
    assert ("failed", "Failed: AssertionError: boom ('x': 1) <b> & C:/tmp") in titles(html)


def test_navigation_follows_sections_then_references_checklists_examples(tmp_path: Path) -> None:
    page = "---\ntitle: {0}\ndescription: A page about {0} for the tests.\n---\n# {0}\n"
    site_repo(
        tmp_path,
        {"sqlalchemy-b.md": RULE, "asyncio-a.md": RULE},
        {
            "examples/app.md": page.format("App"),
            "references/pool.md": page.format("Pool"),
            "checklists/review.md": page.format("Review"),
        },
    )
    build(tmp_path)
    nav = yaml.safe_load((tmp_path / "build" / "mkdocs.gen.yml").read_text("utf-8"))["nav"]
    assert nav == [
        {"Home": "SKILL.md"},
        {"Asyncio": ["rules/asyncio-a.md"]},
        {"SQLAlchemy": ["rules/sqlalchemy-b.md"]},
        {"References": ["references/pool.md"]},
        {"Checklists": ["checklists/review.md"]},
        {"Examples": ["examples/app.md"]},
        {"About the rules": [{"Categories": "rules/_sections.md"}]},
    ]
    root_page = (tmp_path / "build" / "site" / "index.html").read_text("utf-8")
    assert 'url=SKILL/"' in root_page  # the site root opens the skill's index


def test_broken_relative_link_fails_the_build_naming_file_and_line(tmp_path: Path, capsys) -> None:
    broken = RULE.replace("Because.", "Because, see [the other rule](asyncio-missing.md).")
    site_repo(tmp_path, {"asyncio-a.md": broken})
    lines = rule_path(tmp_path, "asyncio-a.md").read_text("utf-8").splitlines()
    line = next(n for n, text in enumerate(lines, 1) if "asyncio-missing.md" in text)
    with pytest.raises(DocsBuildError) as raised:
        build(tmp_path)
    assert (
        f"skills/python-backend/rules/asyncio-a.md:{line}: page does not exist (asyncio-missing.md)"
        in str(raised.value)
    )
    assert main_docs(["--root", str(tmp_path), "build"]) == 1
    assert f"rules/asyncio-a.md:{line}" in capsys.readouterr().err


def test_broken_anchor_fails_the_build(tmp_path: Path) -> None:
    site_repo(tmp_path, {"asyncio-a.md": RULE.replace("Because.", "See [why](#no-such-heading).")})
    with pytest.raises(DocsBuildError, match=r"rules/asyncio-a\.md:\d+: anchor does not exist"):
        build(tmp_path)


def test_the_skill_builds_and_every_markdown_file_has_a_page(tmp_path: Path) -> None:
    """The repository's own skill, as in a fresh clone: strict build, one page per Markdown file."""
    shutil.copytree(ROOT / "skills", tmp_path / "skills")
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    shutil.copytree(ROOT / "overrides", tmp_path / "overrides")
    site = build(tmp_path)
    sources = sorted((tmp_path / "skills" / "python-backend").rglob("*.md"))
    assert sources
    for source in sources:
        rel = source.relative_to(tmp_path / "skills" / "python-backend").as_posix()
        assert (site / rel.removesuffix(".md") / "index.html").is_file(), f"no page for {rel}"


def test_serve_answers_on_loopback_and_stops_on_sigterm(tmp_path: Path) -> None:
    site_repo(tmp_path, {"asyncio-a.md": RULE})
    command = [sys.executable, "-m", "fenceproof.docs", "--root", str(tmp_path), "serve", "--port", "0"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        line = server.stdout.readline()  # "Serving ... at http://127.0.0.1:PORT/ ..." once the site is built
        url = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert url, f"no loopback URL in {line!r}"
        with urllib.request.urlopen(url.group(0) + "rules/asyncio-a/", timeout=10) as response:
            assert "Impact: HIGH" in response.read().decode("utf-8")
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=10) == 0


def test_home_page_summarises_the_last_engine_run(tmp_path: Path) -> None:
    site_repo(tmp_path, {"asyncio-a.md": RULE})
    build(tmp_path)
    assert "The engine has not been run for this build" in page_html(tmp_path, "SKILL.md")
    report = write_report(tmp_path)
    data = json.loads(report.read_text("utf-8"))
    data["summary"] = {"documents": 3, "blocks": 4, "passed": 1, "proved": 1, "linted": 1, "skipped": 1}
    data["summary"].update({"checked": 0, "failed": 0, "wall_s": 1.0})
    data["environment"] = {"python": "3.11.7", "machine": "Linux x86_64", "sqlalchemy": "2.1.9"}
    stamp = report.stat().st_mtime
    report.write_text(json.dumps(data), "utf-8")
    os.utime(report, (stamp, stamp))
    build(tmp_path)
    assert (
        "Last engine run: 4 code blocks in 3 files (1 passed, 1 proved, 1 lint-only, 1 skipped), "
        "against PostgreSQL 15.18, with python 3.11.7, sqlalchemy 2.1.9."
    ) in page_html(tmp_path, "SKILL.md")


CHECKLIST = """---
title: Review checklist
description: What to check before merging an async endpoint.
---

Intro without a level-one heading.

1. The session is closed:

    ```python mode="lint" reason="a fragment of an endpoint"
    import asyncio
    ```

2. Nothing blocks the loop:

    ```text
    an output block
    ```
"""


def test_fences_in_lists_and_pages_without_a_title_heading(tmp_path: Path) -> None:
    site_repo(tmp_path, {"asyncio-a.md": RULE}, {"checklists/review.md": CHECKLIST})
    write_report(tmp_path)
    build(tmp_path)
    html = page_html(tmp_path, "checklists/review.md")
    assert titles(html) == [
        ("linted", "Lint-only: a fragment of an endpoint"),
        ("skipped", "Skipped: text is shown, not run"),
    ]
    # both fences stayed inside their list items, and the badges sit at the top of a page without "# title"
    items = re.findall(r"<li>.*?</li>", html, flags=re.S)
    assert [item.count("fp-block") for item in items if "fp-block" in item] == [1, 1]
    assert html.index('class="fp-badges"') < html.index("Intro without a level-one heading")
    assert "Verified on PostgreSQL 15.18: 2 blocks (1 lint-only, 1 skipped)" in html


def test_links_the_generator_does_not_check_fail_the_build(tmp_path: Path) -> None:
    body = RULE.replace(
        "Because.",
        "Run [the app](../assets/app.py), not [the old one](../assets/gone.py).\n\n"
        "See [the README](../../../README.md) and [the metadata](../metadata.json).",
    )
    site_repo(tmp_path, {"asyncio-a.md": body}, {"assets/app.py": "print('app')\n"})
    lines = rule_path(tmp_path, "asyncio-a.md").read_text("utf-8").splitlines()
    gone = next(n for n, text in enumerate(lines, 1) if "gone.py" in text)
    readme = next(n for n, text in enumerate(lines, 1) if "README.md" in text)
    with pytest.raises(DocsBuildError) as raised:
        build(tmp_path)
    assert str(raised.value).splitlines()[1:] == [
        f"skills/python-backend/rules/asyncio-a.md:{gone}: linked file does not exist (../assets/gone.py)",
        f"skills/python-backend/rules/asyncio-a.md:{readme}: link leaves the skill folder, which installers "
        "copy alone (../../../README.md)",
    ]
