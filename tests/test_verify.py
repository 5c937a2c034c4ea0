"""End to end: ``fenceproof verify`` as a user runs it, on small skills, against a real PostgreSQL."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pg_fixture import pg_url  # noqa: F401  (a fixture)
from skill_factory import make_skill, rule_path

RULE = """# Rule

**Incorrect** (the fallback never runs):

```python expect="raises:TypeError" match="NoneType"
value = None
print(f"{value:.2f}")
```

**Correct**:

```python
import asyncio

await asyncio.sleep(0)
print(f"{1.5:.2f}")
```

```python expect="warns:DeprecationWarning" role="incorrect"
import warnings

warnings.warn("old", DeprecationWarning, stacklevel=1)
```

```json
{"ok": true}
```
"""

DB_RULE = """# Queries

```python
import os

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

engine = create_async_engine(os.environ["DATABASE_URL"])
```

**Correct** (one round trip):

```python expect="queries:2"
async with engine.connect() as conn:
    await conn.execute(text("select 1"))
    await conn.execute(text("select 2"))
```

```python
await engine.dispose()
```
"""


def fenceproof(root: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": url, "NO_COLOR": "1", "COLUMNS": "200"}
    command = [sys.executable, "-m", "fenceproof.cli", "verify", *args]
    return subprocess.run(
        command, cwd=root, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def report(root: Path) -> dict:
    return json.loads((root / "build" / "fenceproof" / "report.json").read_text())


def outcomes(root: Path) -> list[tuple[int, str]]:
    return [(b["line"], b["outcome"]) for b in report(root)["blocks"] if b["path"].endswith("-a.md")]


def test_a_good_skill_passes_and_reports_every_block(tmp_path: Path, pg_url: str) -> None:  # noqa: F811
    make_skill(tmp_path, {"asyncio-a.md": RULE, "sqlalchemy-b.md": DB_RULE})
    done = fenceproof(tmp_path, pg_url, "--report", "out.json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert outcomes(tmp_path) == [(14, "proved"), (21, "passed"), (28, "proved"), (34, "checked")]
    data = json.loads((tmp_path / "out.json").read_text())
    assert data["summary"]["blocks"] == 7 and data["summary"]["failed"] == 0
    queries = [b for b in data["blocks"] if b["expect"] == "queries:2"][0]
    assert queries["outcome"] == "proved" and queries["measured"]["queries"] == 2
    assert data["postgres"]["source"] == "env" and data["postgres"]["server_version"].startswith("1")
    assert [row["kind"] for row in data["budget"][:2]] == ["always-on", "skill body"]
    assert "Context budget" in done.stdout


def _rewrite(tmp_path: Path, old: str, new: str) -> None:
    path = rule_path(tmp_path, "asyncio-a.md")
    path.write_text(path.read_text().replace(old, new), "utf-8")


def test_breaking_a_correct_block_fails(tmp_path: Path, pg_url: str) -> None:  # noqa: F811
    make_skill(tmp_path, {"asyncio-a.md": RULE})
    _rewrite(tmp_path, 'print(f"{1.5:.2f}")', 'print(f"{None:.2f}")')
    done = fenceproof(tmp_path, pg_url)
    assert done.returncode == 1
    assert "skills/python-backend/rules/asyncio-a.md:21: raised TypeError" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_an_incorrect_block_made_harmless_fails(tmp_path: Path, pg_url: str) -> None:  # noqa: F811
    make_skill(tmp_path, {"asyncio-a.md": RULE})
    _rewrite(tmp_path, "value = None", "value = 2.0")
    done = fenceproof(tmp_path, pg_url)
    assert done.returncode == 1
    assert "asyncio-a.md:14: expected raises:TypeError, but the block ran without raising" in done.stdout


def test_a_block_that_never_returns_is_killed_and_named(tmp_path: Path, pg_url: str) -> None:  # noqa: F811
    body = '# Hang\n\n```python timeout="1"\nwhile True:\n    pass\n```\n\n```python\nprint("after")\n```\n'
    make_skill(tmp_path, {"asyncio-a.md": body})
    done = fenceproof(tmp_path, pg_url)
    assert done.returncode == 1
    assert "asyncio-a.md:12: the block did not finish within 1 s; its worker was killed" in done.stdout
    assert "asyncio-a.md:17: not run: the block at line 12 ended the worker" in done.stdout
    assert outcomes(tmp_path) == [(12, "failed"), (17, "failed")]
    assert "Traceback" not in done.stdout + done.stderr


def test_a_connection_left_open_fails_the_block_that_opened_it(tmp_path: Path, pg_url: str) -> None:  # noqa: F811
    make_skill(tmp_path, {"sqlalchemy-a.md": DB_RULE.replace("await engine.dispose()", "print('forgot')")})
    done = fenceproof(tmp_path, pg_url)
    assert done.returncode == 1
    assert "sqlalchemy-a.md:23: left 1 database connection(s) open" in done.stdout


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("impact: HIGH", "impact: [HIGH", "rules/asyncio-a.md:4: frontmatter is not valid YAML"),
        (
            'expect="raises:TypeError"',
            'expect="raises:TypeError" retries="2"',
            "asyncio-a.md:14: fence attribute: unknown key 'retries'",
        ),
        ('```json\n{"ok": true}\n```', '```json\n{"ok": true}\n', "asyncio-a.md:34: unclosed fence"),
        (
            '```python expect="raises:TypeError" match="NoneType"',
            "```python",
            "asyncio-a.md:14: an Incorrect block must say how it fails",
        ),
    ],
)
def test_bad_input_exits_2_naming_file_and_line(tmp_path: Path, old: str, new: str, expected: str) -> None:
    make_skill(tmp_path, {"asyncio-a.md": RULE})
    _rewrite(tmp_path, old, new)
    done = fenceproof(tmp_path, "postgresql://nobody@127.0.0.1:1/none")
    assert done.returncode == 2
    assert expected in done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_no_postgresql_says_how_to_get_one(tmp_path: Path) -> None:
    make_skill(tmp_path, {"asyncio-a.md": RULE})
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(PATH="/usr/bin:/bin", FENCEPROOF_PG_BINDIR=str(tmp_path / "no-binaries-here"), COLUMNS="200")
    command = [sys.executable, "-m", "fenceproof.cli", "verify"]
    done = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2
    assert "set DATABASE_URL=" in done.stderr and "apt-get install postgresql" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr
