"""Grade one solution folder against one task: a copy of it, a fresh database, the task's pytest grader."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fenceproof.evals.tasks import BadInput, Task, evals_dir
from fenceproof.postgres import Server, open_server

IGNORE = shutil.ignore_patterns(".venv", ".git", "__pycache__", "*.pyc", ".pytest_cache", "node_modules")
PYTEST_INI = "[pytest]\nconsole_output_style = classic\n"
LOG_TAIL = 6000


@dataclass
class Check:
    test: str
    outcome: str  # passed, failed, skipped
    message: str = ""


@dataclass
class Grade:
    task: str
    solution: str
    passed: bool
    seconds: float
    checks: list[Check] = field(default_factory=list)
    log: str = ""  # the tail of pytest's output, for a failure nobody expected

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.outcome == "failed"]

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")


def missing_files(task: Task, solution: Path) -> list[str]:
    """The files task.toml says a solution has, that this folder lacks."""
    return [f for f in task.files if not (solution / f).is_file()]


def check_solution(task: Task, solution: Path) -> None:
    """Raise BadInput when ``solution`` is not a folder holding the files the task expects."""
    if not solution.is_dir():
        raise BadInput(f"{solution}: not a folder")
    if missing := missing_files(task, solution):
        raise BadInput(f"{solution}: lacks {', '.join(missing)}, which task {task.name!r} asks for")


def grade(task: Task, solution: Path, server: Server | None = None) -> Grade:
    """Grade ``solution`` (never modified) on ``server``, or on the one DATABASE_URL names / a throwaway."""
    check_solution(task, solution)
    with ExitStack() as stack:
        if server is None:
            server = stack.enter_context(open_server(os.environ))
        scratch = Path(tempfile.mkdtemp(prefix="fenceproof-eval-"))
        stack.callback(shutil.rmtree, scratch, ignore_errors=True)
        work = scratch / "solution"
        shutil.copytree(solution, work, ignore=IGNORE, symlinks=True)
        shutil.copytree(task.grader, scratch / "grader", ignore=IGNORE)
        (scratch / "pytest.ini").write_text(PYTEST_INI, encoding="utf-8")
        dbname = server.create_database()
        stack.callback(server.drop_database, dbname)
        return _run_pytest(task, solution, work, scratch, server, dbname)


def _run_pytest(
    task: Task, original: Path, work: Path, scratch: Path, server: Server, dbname: str
) -> Grade:
    results = scratch / "results.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "EVAL_"))}
    env.update(
        DATABASE_URL=server.async_url(dbname),
        EVAL_PG_URL=_libpq_url(server, dbname),
        EVAL_SOLUTION_DIR=str(work),
        EVAL_RESULTS=str(results),
        PYTHONPATH=os.pathsep.join([str(work), str(evals_dir())]),
        PYTHONDONTWRITEBYTECODE="1",
    )
    command = [
        sys.executable, "-m", "pytest", str(scratch / "grader"), "-p", "graderlib.plugin",
        "-c", str(scratch / "pytest.ini"), "--rootdir", str(scratch), "-p", "no:cacheprovider",
        "-q", "--tb=short", "-W", "ignore::DeprecationWarning",
    ]  # fmt: skip
    t0 = time.monotonic()
    process = subprocess.Popen(
        command, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    timed_out = False
    try:
        output, _ = process.communicate(timeout=task.timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(process.pid)
        output, _ = process.communicate()
    finally:
        _kill_group(process.pid)  # whatever the grader or the solution left running
    seconds = round(time.monotonic() - t0, 2)
    checks = _read_checks(results)
    log = output.decode(errors="replace")[-LOG_TAIL:]
    if timed_out:
        checks.append(Check("grader", "failed", f"timed out after {task.timeout_s:g} s (the code hung?)"))
    elif process.returncode not in (0, 1) and not any(c.outcome == "failed" for c in checks):
        last = log.strip().splitlines()[-1:] or ["no output"]
        checks.append(Check("grader", "failed", f"pytest exited {process.returncode}: {last[0]}"))
    passed = (
        process.returncode == 0
        and not timed_out
        and any(c.outcome == "passed" for c in checks)
        and not any(c.outcome == "failed" for c in checks)
    )
    return Grade(task.name, str(original), passed, seconds, checks, "" if passed else log)


def _read_checks(results: Path) -> list[Check]:
    if not results.is_file():
        return []
    checks = []
    for line in results.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        test = entry["test"] if entry.get("when") in ("call", "collect") else f"{entry['test']} ({entry['when']})"
        checks.append(Check(test, entry["outcome"], entry.get("message", "")))
    return checks


def _libpq_url(server: Server, dbname: str) -> str:
    url = server.async_url(dbname)
    return "postgresql://" + url.split("://", 1)[1]


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
