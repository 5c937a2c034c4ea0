"""The project's own Python passes ruff's lint and format checks, with the settings in pyproject.toml."""

import subprocess

from conftest import REPO_ROOT

from fenceproof.lint import ruff_executable

PATHS = [
    "src",
    "tests",
    "evals",
    "benchmarks",
    "skills/python-backend/scripts",
    "skills/python-backend/assets",
]


def _ruff(*args: str) -> subprocess.CompletedProcess[str]:
    existing = [p for p in PATHS if (REPO_ROOT / p).exists()]
    command = [ruff_executable(), *args, *existing]
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)


def test_ruff_check_is_clean() -> None:
    done = _ruff("check", "--no-cache")
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_format_is_applied() -> None:
    done = _ruff("format", "--check", "--no-cache")
    assert done.returncode == 0, done.stdout + done.stderr
