"""The items table, and a runner for the solution's own test suite: one process runs it several times on a
copy of the solution whose app/main.py is replaced by the grader's (the original, or a mutant)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine

PG_URL = os.environ.get("EVAL_PG_URL", "")
APPS = Path(__file__).parent / "apps"
DRIVER = Path(__file__).parent / "suite_driver.py"


@pytest.fixture(scope="session", autouse=True)
def schema() -> None:
    sys.path.insert(0, os.getcwd())
    from app.models import Base

    engine = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    Base.metadata.create_all(engine)
    engine.dispose()


@pytest.fixture(scope="session")
def suite_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, object]]:
    """The solution's tests run against the original app, again on the same database, then the mutant."""
    copy = tmp_path_factory.mktemp("suite") / "project"
    shutil.copytree(Path.cwd(), copy, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    out = copy.parent / "runs.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "EVAL_"))}
    env.update(PYTHONPATH=str(copy), PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    runs = [("first", "main_good.py"), ("again", "main_good.py"), ("mutant", "main_lost_write.py")]
    args = [f"{label}={APPS / name}" for label, name in runs]
    subprocess.run(
        [sys.executable, str(DRIVER), str(out), *args],
        cwd=copy,
        env=env,
        timeout=80,
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    assert out.exists(), "the solution's test suite could not be run at all"
    return json.loads(out.read_text(encoding="utf-8"))
