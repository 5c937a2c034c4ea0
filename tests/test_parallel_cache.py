"""Parallel runs, the cache, shards and merged reports, and pytest-xdist, end to end against a real PostgreSQL."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pg_fixture import pg_url  # noqa: F401  (a fixture)
from skill_factory import make_skill, rule_path
from test_verify import fenceproof, report

from fenceproof.report import check_report

ONE = """# One

```python
import asyncio

await asyncio.sleep(0.05)
print("one")
```

```output
one
```
"""

TWO = """# Two

**Incorrect**:

```python expect="raises:ZeroDivisionError"
1 / 0
```

**Correct**:

```python
print(2)
```
"""

THREE = """# Three

```python
import os

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

engine = create_async_engine(os.environ["DATABASE_URL"])
async with engine.connect() as conn:
    print((await conn.execute(text("select 3"))).scalar())
await engine.dispose()
```
"""

RULES = {"asyncio-one.md": ONE, "asyncio-two.md": TWO, "sqlalchemy-three.md": THREE}


def rows(root: Path, name: str = "build/fenceproof/report.json") -> list[tuple]:
    data = json.loads((root / name).read_text())
    return [(b["path"], b["line"], b["outcome"], b["stdout"]) for b in data["blocks"]]


def cached(root: Path) -> dict[str, set[bool]]:
    by_doc: dict[str, set[bool]] = {}
    for b in report(root)["blocks"]:
        by_doc.setdefault(b["path"].rsplit("/", 1)[-1], set()).add(b["cached"])
    return by_doc


def test_parallel_and_serial_runs_report_the_same(tmp_path: Path, pg_url: str) -> None:  # noqa: F811
    make_skill(tmp_path, RULES)
    serial = fenceproof(tmp_path, pg_url, "-j", "1", "--no-cache")
    assert serial.returncode == 0, serial.stdout + serial.stderr
    first = rows(tmp_path)
    parallel = fenceproof(tmp_path, pg_url, "-j", "3", "--no-cache")
    assert parallel.returncode == 0, parallel.stdout + parallel.stderr
    assert rows(tmp_path) == first
    table = [line.split("│")[1].strip() for line in parallel.stdout.splitlines() if line.count("│") > 3]
    assert [t for t in table if t.endswith(".md")] == sorted(t for t in table if t.endswith(".md"))


def test_an_unchanged_tree_comes_from_the_cache_and_an_edit_reruns_only_that_document(
    tmp_path: Path,
    pg_url: str,  # noqa: F811
) -> None:
    make_skill(tmp_path, RULES)
    assert fenceproof(tmp_path, pg_url).returncode == 0
    assert cached(tmp_path) == {
        "asyncio-one.md": {False},
        "asyncio-two.md": {False},
        "sqlalchemy-three.md": {False},
    }
    again = fenceproof(tmp_path, pg_url)
    assert again.returncode == 0
    assert set().union(*cached(tmp_path).values()) == {True}
    assert "from the cache of an earlier run" in again.stdout
    path = rule_path(tmp_path, "asyncio-two.md")
    path.write_text(path.read_text().replace("print(2)", "print(22)"))
    assert fenceproof(tmp_path, pg_url).returncode == 0
    assert cached(tmp_path) == {
        "asyncio-one.md": {True},
        "asyncio-two.md": {False},
        "sqlalchemy-three.md": {True},
    }
    assert fenceproof(tmp_path, pg_url, "--no-cache").returncode == 0
    assert set().union(*cached(tmp_path).values()) == {False}


def test_a_run_without_the_cache_refreshes_it(tmp_path: Path, pg_url: str) -> None:  # noqa: F811
    make_skill(tmp_path, RULES)
    assert fenceproof(tmp_path, pg_url, "--no-cache").returncode == 0
    assert set().union(*cached(tmp_path).values()) == {False}
    assert fenceproof(tmp_path, pg_url).returncode == 0
    assert set().union(*cached(tmp_path).values()) == {True}


def test_a_corrupt_or_foreign_cache_is_ignored(tmp_path: Path, pg_url: str) -> None:  # noqa: F811
    make_skill(tmp_path, RULES)
    assert fenceproof(tmp_path, pg_url).returncode == 0
    every = sorted((tmp_path / "build" / "fenceproof" / "cache").glob("*.json"))
    entries = [e for e in every if json.loads(e.read_text())["document"].rsplit("/", 1)[-1] in RULES]
    assert len(entries) == 3
    entries[0].write_text("{not json")
    foreign = json.loads(entries[1].read_text())
    foreign["rows"][0]["outcome"] = "failed"  # a failure no run of ours would have stored
    entries[1].write_text(json.dumps(foreign))
    liar = json.loads(entries[2].read_text())
    liar["key"] = "0" * 64  # an entry that describes other inputs
    entries[2].write_text(json.dumps(liar))
    assert fenceproof(tmp_path, pg_url).returncode == 0
    assert set().union(*cached(tmp_path).values()) == {False}


def test_a_failing_document_is_never_cached(tmp_path: Path, pg_url: str) -> None:  # noqa: F811
    make_skill(tmp_path, {"asyncio-two.md": TWO.replace("print(2)", "print(2 / 0)")})
    assert fenceproof(tmp_path, pg_url).returncode == 1
    assert fenceproof(tmp_path, pg_url).returncode == 1
    assert cached(tmp_path) == {"asyncio-two.md": {False}}


def test_shards_cover_the_corpus_once_and_merge_into_the_full_report(tmp_path: Path, pg_url: str) -> None:  # noqa: F811
    make_skill(tmp_path, RULES)
    assert fenceproof(tmp_path, pg_url, "--no-cache").returncode == 0
    full = rows(tmp_path)
    parts = []
    for k in (1, 2):
        done = fenceproof(tmp_path, pg_url, "--no-cache", "--shard", f"{k}/2", "--report", f"shard{k}.json")
        assert done.returncode == 0, done.stdout + done.stderr
        parts.append({r[:2] for r in rows(tmp_path, f"shard{k}.json")})
    assert parts[0] and parts[1] and not parts[0] & parts[1]
    merge = [
        sys.executable,
        "-m",
        "fenceproof.cli",
        "report",
        "merge",
        "shard1.json",
        "shard2.json",
        "-o",
        "all.json",
    ]
    done = subprocess.run(merge, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert rows(tmp_path, "all.json") == full
    merged = json.loads((tmp_path / "all.json").read_text())
    assert check_report(merged) == [] and merged["timings"]["shards"] == 2
    again = [*merge[:-1], "twice.json"]
    again[5:7] = ["shard1.json", "shard1.json"]
    done = subprocess.run(again, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and "is in two of the reports" in done.stderr
    (tmp_path / "junk.json").write_text('{"blocks": 3}')
    junk = [*merge[:5], "junk.json", "-o", "x.json"]
    done = subprocess.run(junk, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and "junk.json: not a fenceproof report" in done.stderr


@pytest.mark.parametrize("bad", ["3/2", "0/2", "a/b", "2"])
def test_a_bad_shard_is_a_usage_error(tmp_path: Path, pg_url: str, bad: str) -> None:  # noqa: F811
    make_skill(tmp_path, RULES)
    done = fenceproof(tmp_path, pg_url, "--shard", bad)
    assert done.returncode == 2 and "--shard" in done.stderr


def test_the_pytest_plugin_runs_under_xdist_and_writes_one_report(tmp_path: Path, pg_url: str) -> None:  # noqa: F811
    make_skill(tmp_path, RULES)
    env = {**os.environ, "DATABASE_URL": pg_url}
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "fenceproof.pytest_plugin",
        "-n",
        "2",
        "--dist",
        "loadgroup",
    ]
    done = subprocess.run(
        [*command, "-q", "skills"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "5 passed" in done.stdout
    data = report(tmp_path)
    assert check_report(data) == []
    assert {b["path"].rsplit("/", 1)[-1] for b in data["blocks"]} == set(RULES)
    assert not (tmp_path / "build" / "fenceproof" / "xdist").exists()
