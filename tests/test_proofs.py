"""The 0.2 proofs, end to end against a real PostgreSQL: the paste check, checked output, conditions, every
Python spelling, and the one registry of kinds."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pg_fixture import pg_url  # noqa: F401  (a fixture)
from skill_factory import make_skill
from test_verify import fenceproof, report

import fenceproof as engine_package
from fenceproof import kinds
from fenceproof.report import check_report
from fenceproof.schemas import validator

LEANS_ON_INCORRECT = """# Lean

**Incorrect** (prints before the value exists):

```python expect="raises:TypeError"
total = 2
print(total + None)
```

**Correct**:

```python
print(total + 1)
```
"""

PASTEABLE = """# Standalone

```python
base = 40
```

**Incorrect**:

```python expect="raises:TypeError"
base + None
```

**Correct**:

```python
print(base + 2)
```
"""

OUTPUT = """# Output

```python3
import time

print("answer:", 42)
print(f"took {time.perf_counter() % 1:.3f} s")
for n in range(3):
    print("row", n)
print("end")
```

```output
answer: 42
took ... s
...
end
```
"""


def rows(root: Path) -> dict[int, dict]:
    return {b["line"]: b for b in report(root)["blocks"] if "/rules/" in b["path"]}


def test_a_correct_block_using_an_incorrect_blocks_name_fails_naming_it(
    tmp_path: Path,
    pg_url: str,  # noqa: F811
) -> None:
    make_skill(tmp_path, {"asyncio-a.md": LEANS_ON_INCORRECT})
    done = fenceproof(tmp_path, pg_url)
    assert done.returncode == 1, done.stdout + done.stderr
    assert (
        "asyncio-a.md:21: pasted without the Incorrect blocks, it fails: raised NameError: "
        "name 'total' is not defined" in done.stdout
    )
    assert "defined only by the Incorrect block at line 14" in done.stdout
    row = rows(tmp_path)[21]
    assert row["outcome"] == "failed" and row["paste"]["outcome"] == "failed"
    assert rows(tmp_path)[14]["paste"] is None  # Incorrect blocks are not part of the chain


def test_a_chain_with_its_own_setup_passes_both_runs(tmp_path: Path, pg_url: str) -> None:  # noqa: F811
    make_skill(tmp_path, {"asyncio-a.md": PASTEABLE})
    done = fenceproof(tmp_path, pg_url)
    assert done.returncode == 0, done.stdout + done.stderr
    by_line = rows(tmp_path)
    assert by_line[24]["outcome"] == "passed" and by_line[24]["paste"]["outcome"] == "passed"
    assert by_line[24]["paste"]["message"] is None and by_line[24]["paste"]["duration_s"] >= 0
    assert by_line[24]["stdout"] == "42\n"
    assert "also ran without the Incorrect blocks; 0 failed there" in done.stdout


def test_output_is_compared_with_what_the_block_printed(tmp_path: Path, pg_url: str) -> None:  # noqa: F811
    make_skill(tmp_path, {"asyncio-a.md": OUTPUT})
    done = fenceproof(tmp_path, pg_url)
    assert done.returncode == 0, done.stdout + done.stderr
    by_line = rows(tmp_path)
    assert by_line[12]["kind"] == "python" and by_line[12]["outcome"] == "passed"  # ```python3 runs
    assert by_line[22] == {**by_line[22], "kind": "output", "outcome": "checked"}


def test_an_output_block_that_disagrees_fails_with_a_diff(tmp_path: Path, pg_url: str) -> None:  # noqa: F811
    make_skill(tmp_path, {"asyncio-a.md": OUTPUT.replace("answer: 42", "answer: 41")})
    done = fenceproof(tmp_path, pg_url)
    assert done.returncode == 1
    assert "asyncio-a.md:22: the block at line 12 printed something else:" in done.stdout
    assert "-answer: 41" in done.stdout and "+answer: 42" in done.stdout


def test_output_of_a_correct_block_is_checked_in_the_chain_too(tmp_path: Path, pg_url: str) -> None:  # noqa: F811
    body = """# Chain

**Incorrect**:

```python expect="raises:ZeroDivisionError"
shown = "from the incorrect block"
1 / 0
```

**Correct**:

```python
print(globals().get("shown", "clean"))
```

```output
from the incorrect block
```
"""
    make_skill(tmp_path, {"asyncio-a.md": body})
    done = fenceproof(tmp_path, pg_url)
    assert done.returncode == 1
    assert "asyncio-a.md:25: in the Correct chain on its own (without the Incorrect blocks)" in done.stdout
    assert "+clean" in done.stdout


def test_requires_skips_with_the_reason(tmp_path: Path, pg_url: str) -> None:  # noqa: F811
    body = """# Versions

```python requires="python>=99"
raise SystemExit("never run")
```

```output
nothing
```

```python requires="sqlalchemy>=2.1"
import sqlalchemy

print(sqlalchemy.__version__ >= "2.1")
```

```python requires="no-such-package-here>=1"
raise SystemExit("never run")
```
"""
    make_skill(tmp_path, {"asyncio-a.md": body})
    done = fenceproof(tmp_path, pg_url)
    assert done.returncode == 0, done.stdout + done.stderr
    by_line = rows(tmp_path)
    running = ".".join(map(str, sys.version_info[:3]))
    assert by_line[12]["outcome"] == "skipped"
    assert by_line[12]["message"] == f"requires python>=99; running python {running}"
    assert by_line[16] == {**by_line[16], "outcome": "skipped", "message": "the block it shows was skipped"}
    assert by_line[20]["outcome"] == "passed" and by_line[20]["stdout"] == "True\n"
    assert by_line[26]["message"] == "requires no-such-package-here>=1; no-such-package-here is not installed"


@pytest.mark.parametrize(
    ("fence", "message"),
    [
        ('```python requires="python"', "requires is not a version condition"),
        ("```python requires=\"python>=3; sys_platform=='x'\"", "not a version condition"),
    ],
)
def test_a_malformed_condition_is_bad_input(tmp_path: Path, pg_url: str, fence: str, message: str) -> None:  # noqa: F811
    make_skill(tmp_path, {"asyncio-a.md": f"# Bad\n\n{fence}\npass\n```\n"})
    done = fenceproof(tmp_path, pg_url)
    assert done.returncode == 2
    assert "skills/python-backend/rules/asyncio-a.md:12:" in done.stderr


def test_an_output_block_with_no_python_block_before_it_is_bad_input(tmp_path: Path, pg_url: str) -> None:  # noqa: F811
    make_skill(tmp_path, {"asyncio-a.md": "# Bad\n\n```output\n1\n```\n"})
    done = fenceproof(tmp_path, pg_url)
    assert done.returncode == 2
    assert "asyncio-a.md:12: an output block shows what the Python block before it printed" in done.stderr


def test_every_python_spelling_runs(tmp_path: Path, pg_url: str) -> None:  # noqa: F811
    body = "# Spellings\n\n" + "".join(
        f'```{word}\nprint("{word}")\n```\n\n' for word in ("python", "py", "python3")
    )
    make_skill(tmp_path, {"asyncio-a.md": body})
    done = fenceproof(tmp_path, pg_url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [(b["lang"], b["kind"], b["stdout"]) for b in rows(tmp_path).values()] == [
        ("python", "python", "python\n"),
        ("py", "python", "py\n"),
        ("python3", "python", "python3\n"),
    ]


def test_the_schema_and_the_registry_agree_on_expect() -> None:
    schema = json.loads((Path(engine_package.__file__).parent / "schemas" / "fence.schema.json").read_text())
    assert schema["properties"]["expect"]["pattern"] == kinds.expect_pattern()


def test_every_report_written_matches_the_report_schema(tmp_path: Path, pg_url: str) -> None:  # noqa: F811
    make_skill(tmp_path, {"asyncio-a.md": PASTEABLE, "asyncio-b.md": OUTPUT})
    assert fenceproof(tmp_path, pg_url).returncode == 0
    data = report(tmp_path)
    assert check_report(data) == []
    data["blocks"][0]["outcome"] = "maybe"
    assert check_report(data) and not validator("report").is_valid(data)


NEW_KIND = """
def _judge_prints(target: str, match: str | None, record: Any) -> Verdict | None:
    if record.status == "raised":
        return None
    if target not in record.stdout:
        return Verdict("failed", f"expected the block to print {target!r}", {})
    return Verdict("proved", f"printed {target!r}", {})


EXPECT_KINDS["prints"] = ExpectKind("prints", r"[a-z]+", lambda t, m: f"prints {t}", _judge_prints)
"""


def test_a_new_expect_kind_needs_the_registry_and_the_schema_only(tmp_path: Path, pg_url: str) -> None:  # noqa: F811
    """Copy the engine, add ``expect="prints:<word>"`` to kinds.py and the schema, and nothing else."""
    package = tmp_path / "engine" / "fenceproof"
    shutil.copytree(
        Path(engine_package.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__")
    )
    kinds_py = package / "kinds.py"
    kinds_py.write_text(kinds_py.read_text() + NEW_KIND)
    schema_path = package / "schemas" / "fence.schema.json"
    schema = json.loads(schema_path.read_text())
    schema["properties"]["expect"]["pattern"] = schema["properties"]["expect"]["pattern"].replace(
        "^(", "^(prints:[a-z]+|"
    )
    schema_path.write_text(json.dumps(schema))
    changed = {
        p.relative_to(package).as_posix()
        for p in package.rglob("*")
        if p.is_file()
        and p.read_bytes() != (Path(engine_package.__file__).parent / p.relative_to(package)).read_bytes()
    }
    assert changed == {"kinds.py", "schemas/fence.schema.json"}
    body = '# New\n\n**Incorrect**:\n\n```python expect="prints:hello"\nprint("hello")\n```\n'
    body += '\n```python expect="prints:bye"\nprint("hello")\n```\n'
    make_skill(tmp_path / "repo", {"asyncio-a.md": body})
    env = {**os.environ, "DATABASE_URL": pg_url, "PYTHONPATH": str(package.parent), "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-m", "fenceproof.cli", "verify"],
        cwd=tmp_path / "repo",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    by_line = rows(tmp_path / "repo")
    assert (by_line[14]["outcome"], by_line[14]["message"]) == ("proved", "printed 'hello'")
    assert re.search(r"asyncio-a\.md:18: expected the block to print 'bye'", done.stdout)
