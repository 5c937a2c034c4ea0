"""``pip install`` of the built wheel gives an engine that verifies another skill pack, outside this repository."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT, require_tool
from pg_fixture import pg_url  # noqa: F401  (a fixture)

PACK_SKILL = """---
name: tiny-pack
description: "A skill pack of someone else's, used to test the installed engine."
---
# Tiny pack

See [the guide](guide.md).
"""

GUIDE = """# Guide

**Incorrect** (integer division by zero):

```python expect="raises:ZeroDivisionError"
print(1 // 0)
```

**Correct**:

```python
print(sum(range(5)))
```

```output
10
```

```json
{"valid": true}
```
"""

COUNTED = """
```python expect="queries:1"
print("counted")
```
"""


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``fenceproof`` command of a fresh virtual environment holding only the wheel and its dependencies."""
    uv = require_tool("uv", "python3 -m pip install uv")
    tmp = tmp_path_factory.mktemp("wheel")
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    built = run([uv, "build", "--wheel", "--out-dir", str(tmp / "dist")], REPO_ROOT, env)
    assert built.returncode == 0, built.stderr
    wheels = list((tmp / "dist").glob("fenceproof-*.whl"))
    assert len(wheels) == 1, built.stderr
    venv = tmp / "venv"
    made = run([uv, "venv", "--python", sys.executable, str(venv)], tmp, env)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    done = run([uv, "pip", "install", "--python", str(python), str(wheels[0])], tmp, env)
    assert done.returncode == 0, done.stderr
    listed = run([uv, "pip", "list", "--python", str(python)], tmp, env).stdout
    assert "sqlalchemy" not in listed.lower()  # what a corpus imports is not the engine's dependency
    return venv / "bin" / "fenceproof"


def test_the_installed_wheel_verifies_another_skill_pack(
    installed: Path,
    tmp_path: Path,
    pg_url: str,  # noqa: F811
) -> None:
    pack = tmp_path / "pack"
    (pack / "tiny-pack").mkdir(parents=True)
    (pack / "pyproject.toml").write_text('[tool.fenceproof]\nskills = ["tiny-pack"]\n')
    (pack / "tiny-pack" / "SKILL.md").write_text(PACK_SKILL)
    (pack / "tiny-pack" / "guide.md").write_text(GUIDE)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "DATABASE_URL": pg_url, "COLUMNS": "200"}
    done = run([str(installed), "verify"], pack, env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (
        "OK: 4 blocks in 2 documents, 1 passed, 1 proved, 0 linted, 0 skipped, 2 checked, 0 failed"
        in done.stdout
    )
    assert (pack / "build" / "fenceproof" / "report.json").is_file()

    (pack / "tiny-pack" / "guide.md").write_text(GUIDE + COUNTED)
    done = run([str(installed), "verify"], pack, env)
    assert done.returncode == 1
    assert (
        'tiny-pack/guide.md:23: expect="queries:..." is observed through sqlalchemy, which is not installed '
        "where fenceproof runs" in done.stdout
    )
    assert "Traceback" not in done.stdout + done.stderr


def test_verify_help_says_how_to_name_the_skill_folders(installed: Path) -> None:
    done = run([str(installed), "verify", "--help"], installed.parent)
    assert done.returncode == 0
    assert "[tool.fenceproof]" in " ".join(done.stdout.split())
