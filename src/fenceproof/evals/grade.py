"""Grade one solution folder against one task: a copy of it, a fresh database, the task's pytest grader."""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fenceproof.evals.tasks import BadInput, Task, evals_dir
from fenceproof.evals.zygote import Zygote
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
    log: str = ""  # the tail of pytest's output

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


class Grader:
    """Grades solutions on one PostgreSQL server with one zygote. A context manager; safe to share between
    threads. ``server``: an open Server to use (else DATABASE_URL's, or a throwaway cluster)."""

    def __init__(self, server: Server | None = None) -> None:
        self._stack = ExitStack()
        try:
            self.server = server or self._stack.enter_context(open_server(os.environ))
            self.zygote = self._stack.enter_context(Zygote())
        except BaseException:
            self._stack.close()
            raise

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> Grader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def grade(self, task: Task, solution: Path) -> Grade:
        """Grade ``solution`` (it is copied, never modified) with the task's grader in a fresh database."""
        check_solution(task, solution)
        with ExitStack() as stack:
            scratch = Path(tempfile.mkdtemp(prefix="fenceproof-eval-"))
            stack.callback(shutil.rmtree, scratch, ignore_errors=True)
            work = scratch / "solution"
            shutil.copytree(solution, work, ignore=IGNORE, symlinks=True)
            shutil.copytree(task.grader, scratch / "grader", ignore=IGNORE)
            (scratch / "pytest.ini").write_text(PYTEST_INI, encoding="utf-8")
            dbname = self.server.create_database()
            stack.callback(self.server.drop_database, dbname)
            return self._run_pytest(task, solution, work, scratch, dbname)

    def _run_pytest(self, task: Task, original: Path, work: Path, scratch: Path, dbname: str) -> Grade:
        results, log, status = scratch / "results.jsonl", scratch / "pytest.log", scratch / "status"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "EVAL_"))}
        url = self.server.async_url(dbname)
        env.update(
            DATABASE_URL=url,
            EVAL_PG_URL="postgresql://" + url.split("://", 1)[1],
            EVAL_SOLUTION_DIR=str(work),
            EVAL_RESULTS=str(results),
            PYTHONPATH=os.pathsep.join([str(work), str(evals_dir())]),
            PYTHONDONTWRITEBYTECODE="1",
            PYTEST_DISABLE_PLUGIN_AUTOLOAD="1",  # only graderlib: no plugin of the environment joins in
        )
        args = [
            str(scratch / "grader"), "-p", "graderlib.plugin", "-c", str(scratch / "pytest.ini"),
            "--rootdir", str(scratch), "-p", "no:cacheprovider", "-q", "--tb=short",
            "-W", "ignore::DeprecationWarning",
        ]  # fmt: skip
        args += os.environ.get("FENCEPROOF_EVAL_PYTEST_ARGS", "").split()  # e.g. --durations=10
        t0 = time.monotonic()
        pid = self.zygote.start(work, env, args, log, status)
        try:
            returncode = self.zygote.wait(pid, status, task.timeout_s)
        finally:
            _kill_group(pid)  # whatever the grader or the solution left running
        seconds = round(time.monotonic() - t0, 2)
        checks = _read_checks(results)
        output = log.read_text(errors="replace")[-LOG_TAIL:] if log.is_file() else ""
        if returncode is None:
            checks.append(Check("grader", "failed", f"timed out after {task.timeout_s:g} s (the code hung?)"))
        elif returncode not in (0, 1) and not any(c.outcome == "failed" for c in checks):
            last = output.strip().splitlines()[-1:] or ["no output"]
            checks.append(Check("grader", "failed", f"pytest exited {returncode}: {last[0]}"))
        passed = (
            returncode == 0
            and any(c.outcome == "passed" for c in checks)
            and not any(c.outcome == "failed" for c in checks)
        )
        return Grade(task.name, str(original), passed, seconds, checks, output)


def grade(task: Task, solution: Path, server: Server | None = None) -> Grade:
    """Grade one solution with a Grader of its own."""
    check_solution(task, solution)
    with Grader(server) as grader:
        return grader.grade(task, solution)


def _read_checks(results: Path) -> list[Check]:
    if not results.is_file():
        return []
    checks = []
    for line in results.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        test = (
            entry["test"]
            if entry.get("when") in ("call", "collect")
            else f"{entry['test']} ({entry['when']})"
        )
        checks.append(Check(test, entry["outcome"], entry.get("message", "")))
    return checks


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
