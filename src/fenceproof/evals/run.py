"""``fenceproof eval run``: each condition's agent on each task, repeated, in a scratch copy of the starter."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from fenceproof.evals.grade import IGNORE, Check, Grade, Grader, missing_files
from fenceproof.evals.tasks import Task


@dataclass
class Run:
    condition: str
    task: str
    repeat: int
    passed: bool
    agent_exit: int | None  # None: killed at the time limit
    agent_seconds: float
    grade_seconds: float
    failed_checks: list[Check] = field(default_factory=list)
    log: str = ""  # the agent's output, saved here


def expand(command: str, *, prompt_file: Path, project: Path, task: Task) -> str:
    """The agent command with its placeholders filled in, each shell-quoted."""
    values = {
        "{prompt_file}": str(prompt_file),
        "{prompt}": prompt_file.read_text(encoding="utf-8"),
        "{dir}": str(project),
        "{task}": task.name,
        "{task_dir}": str(task.dir),
    }
    pattern = "|".join(re.escape(key) for key in values)  # one pass: a prompt saying "{dir}" stays as it is
    return re.sub(pattern, lambda m: shlex.quote(values[m.group(0)]), command)


def run_agent(
    command: str, project: Path, log: Path, timeout_s: float, env: dict[str, str]
) -> tuple[int | None, float]:
    """Run ``command`` with bash in ``project``; (exit code or None at the time limit, seconds)."""
    t0 = time.monotonic()
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["bash", "-c", command], cwd=project, env=env, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            code: int | None = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            process.wait()
    return code, round(time.monotonic() - t0, 2)


def one_run(
    grader: Grader, condition: str, command: str, task: Task, repeat: int, logs: Path, agent_timeout_s: float
) -> Run:
    scratch = Path(tempfile.mkdtemp(prefix=f"fenceproof-run-{task.name}-"))
    try:
        project = scratch / "project"
        shutil.copytree(task.dir / "starter", project, ignore=IGNORE)
        prompt_file = scratch / "prompt.md"
        shutil.copyfile(task.prompt_file, prompt_file)
        log = logs / f"{condition}-{task.name}-{repeat}.log"
        env = {
            **os.environ,
            "EVAL_PROMPT_FILE": str(prompt_file),
            "EVAL_DIR": str(project),
            "EVAL_TASK": task.name,
        }
        for name in ("DATABASE_URL", "EVAL_PG_URL"):  # the agent gets no database of ours
            env.pop(name, None)
        code, agent_s = run_agent(
            expand(command, prompt_file=prompt_file, project=project, task=task),
            project,
            log,
            agent_timeout_s,
            env,
        )
        if missing := missing_files(task, project):
            grade = Grade(
                task.name,
                str(project),
                False,
                0.0,
                [Check("files", "failed", f"the agent did not write {', '.join(missing)}")],
            )
        else:
            grade = grader.grade(task, project)
        if code is None:
            grade.checks.append(Check("agent", "failed", f"the agent ran out of its {agent_timeout_s:g} s"))
            grade.passed = False
        return Run(
            condition, task.name, repeat, grade.passed, code, agent_s, grade.seconds, grade.failed, str(log)
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def run_all(
    grader: Grader,
    conditions: dict[str, str],
    tasks: list[Task],
    repeat: int,
    logs: Path,
    *,
    agent_timeout_s: float = 900.0,
    jobs: int = 1,
    on_done: Callable[[Run], None] = lambda run: None,
) -> list[Run]:
    """Every (condition, task, repeat), ``jobs`` at a time; results in that order."""
    logs.mkdir(parents=True, exist_ok=True)
    plan = [(c, cmd, t, r) for c, cmd in conditions.items() for t in tasks for r in range(1, repeat + 1)]

    def work(item: tuple[str, str, Task, int]) -> Run:
        condition, command, task, r = item
        result = one_run(grader, condition, command, task, r, logs, agent_timeout_s)
        on_done(result)
        return result

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(work, plan))
