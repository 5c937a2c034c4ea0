"""The evals: every grader passes its reference and alternatives and fails every buggy solution; the
``fenceproof eval grade`` and ``eval run`` commands, end to end, with scripted agents instead of a model."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import REPO_ROOT, SKILL_DIR

from fenceproof.evals.grade import Grade, Grader
from fenceproof.evals.tasks import Task, all_tasks
from fenceproof.postgres import Server, open_server

EVALS = REPO_ROOT / "evals"
TASKS = all_tasks(REPO_ROOT)
SOLUTIONS = [(task, label, folder, good) for task in TASKS for label, folder, good in task.solutions()]
RULES = {p.stem for p in (SKILL_DIR / "rules").glob("*.md") if not p.name.startswith("_")}
PARALLEL = 3  # gradings at once: most of a grade is waiting on sockets and sleeps, not CPU


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    with open_server({}) as srv:
        yield srv


@pytest.fixture(scope="session")
def grades(server: Server) -> Iterator[dict[str, Future[Grade]]]:
    """Every solution of every task, graded in the background as soon as the first test asks."""
    with Grader(server) as grader, ThreadPoolExecutor(PARALLEL) as pool:
        yield {f"{t.name}/{label}": pool.submit(grader.grade, t, folder) for t, label, folder, _ in SOLUTIONS}


def _explain(grade: Grade) -> str:
    lines = [f"{c.test}: {c.message}" for c in grade.failed] or [grade.log[-3000:]]
    return "\n".join(lines)


@pytest.mark.parametrize(
    ("task", "label", "folder", "good"),
    SOLUTIONS,
    ids=[f"{t.name}/{label}" for t, label, _, _ in SOLUTIONS],
)
def test_grader_verdict(
    grades: dict[str, Future[Grade]], task: Task, label: str, folder: Path, good: bool
) -> None:
    grade = grades[f"{task.name}/{label}"].result(timeout=600)
    if good:
        assert grade.passed, f"{task.name}/{label} should pass:\n{_explain(grade)}"
    else:
        assert not grade.passed and grade.failed, f"{task.name}/{label} should fail, but every check passed"


@pytest.mark.parametrize("task", TASKS, ids=[t.name for t in TASKS])
def test_task_layout(task: Task) -> None:
    labels = [label for label, _, _ in task.solutions()]
    assert "reference" in labels, f"{task.name} has no reference/"
    assert any(label.startswith("alternatives/") for label in labels), f"{task.name} has no alternative"
    assert sum(label.startswith("buggy/") for label in labels) >= 2, f"{task.name} has fewer than 2 buggy/"
    assert (task.dir / "starter").is_dir() and task.prompt_file.read_text().strip()
    unknown = set(task.rules) - RULES
    assert task.rules and not unknown, f"{task.name}: task.toml rules {sorted(unknown)} are not rule files"
    for _, folder, good in task.solutions():
        assert not (good and (folder / "BUG.md").exists()), f"{folder} passes yet has a BUG.md"
        if not good:
            bug = (folder / "BUG.md").read_text(encoding="utf-8").strip()
            assert bug and "\n" not in bug, f"{folder}/BUG.md must be one line stating the bug"
            assert any(rule in bug for rule in RULES), f"{folder}/BUG.md names no rule of the skill: {bug}"


def test_every_rule_is_failed_by_some_grader() -> None:
    covered = {rule for task in TASKS for rule in task.rules}
    missing = sorted(RULES - covered)
    assert not missing, f"no task's grader fails the Incorrect pattern of: {', '.join(missing)}"


def test_readme_table_lists_every_task_rule() -> None:
    readme = (EVALS / "README.md").read_text(encoding="utf-8")
    for task in TASKS:
        for rule in task.rules:
            row = next((line for line in readme.splitlines() if line.startswith(f"| `{rule}`")), "")
            assert f"`{task.name}`" in row, (
                f"evals/README.md: the row of `{rule}` does not name `{task.name}`"
            )


# -- the commands, as a user runs them -------------------------------------------------------------


def _fenceproof(server: Server, *args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    p = server.params
    env = {**os.environ, "DATABASE_URL": f"postgresql://{p['user']}@{p['host']}:{p['port']}/postgres"}
    command = [sys.executable, "-m", "fenceproof.cli", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)


def _tree_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        digest.update(str(path.relative_to(folder)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def test_grade_passes_a_reference_and_leaves_it_untouched(server: Server, tmp_path: Path) -> None:
    folder = EVALS / "tasks" / "fanout" / "reference"
    before = _tree_digest(folder)
    report = tmp_path / "grade.json"
    done = _fenceproof(server, "eval", "grade", "fanout", str(folder), "--report", str(report))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("PASS fanout"), done.stdout
    assert _tree_digest(folder) == before, "grading changed the solution folder"
    data = json.loads(report.read_text())
    assert data["passed"] is True and all(c["outcome"] == "passed" for c in data["checks"]), data


def test_grade_fails_a_buggy_solution_saying_what_the_code_did(server: Server) -> None:
    folder = EVALS / "tasks" / "fanout" / "buggy" / "gather-siblings-run-on"
    done = _fenceproof(server, "eval", "grade", str(EVALS / "tasks" / "fanout"), str(folder))
    assert done.returncode == 1, done.stdout + done.stderr
    assert (
        "x test_a_failed_response_cancels_the_others: siblings kept running after /status/500" in done.stdout
    )


@pytest.mark.parametrize(
    ("task", "folder", "error"),
    [
        ("no-such-task", "evals/tasks/fanout/reference", "no such task"),
        ("fanout", "evals/tasks/fanout/starter", "lacks app/fanout.py"),
        ("fanout", "evals/tasks/fanout/no-such-folder", "not a folder"),
    ],
    ids=["missing-task", "dir-without-the-file", "missing-dir"],
)
def test_grade_bad_input_exits_2(server: Server, task: str, folder: str, error: str) -> None:
    done = _fenceproof(server, "eval", "grade", task, folder)
    assert done.returncode == 2, done.stdout + done.stderr
    assert error in done.stderr, done.stderr


def test_run_with_two_scripted_agents_writes_the_json_and_the_table(server: Server, tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    copy_reference = "cp -r {task_dir}/reference/. {dir}/ && test -s {prompt_file}"
    copy_buggy = 'cp -r "$(ls -d {task_dir}/buggy/*/ | head -n 1)". {dir}/'
    done = _fenceproof(
        server, "eval", "run", "--tasks", "fanout", "orders-api", "--repeat", "1",
        "--condition", f"reference={copy_reference}", "--condition", f"buggy={copy_buggy}",
        "--out", str(out), "--jobs", "2",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads(out.read_text())
    summary = {(row["condition"], row["task"]): row for row in data["summary"]}
    assert summary[("reference", "all")]["passed"] == 2 and summary[("reference", "all")]["runs"] == 2
    assert summary[("buggy", "all")]["passed"] == 0 and summary[("buggy", "all")]["runs"] == 2
    assert summary[("reference", "fanout")]["ci95"][1] == 1.0
    assert data["agent_calls"] == 4 and len(data["runs"]) == 4
    assert data["top_failures"] and all(row["condition"] == "buggy" for row in data["top_failures"])
    table = done.stdout
    assert "pass rate per condition and task" in table and "1/1 100%" in table and "0/1 0%" in table, table
    assert "checks that failed most:" in table, table


def test_run_without_an_agent_is_bad_input(server: Server) -> None:
    done = _fenceproof(server, "eval", "run", "--tasks", "fanout")
    assert done.returncode == 2 and "--agent" in done.stderr, done.stdout + done.stderr


def test_task_toml_files_are_valid() -> None:
    for task in TASKS:
        meta = tomllib.loads((task.dir / "task.toml").read_text(encoding="utf-8"))
        assert set(meta) <= {"rules", "timeout_s", "files"}, (
            f"{task.name}/task.toml: unknown keys {set(meta)}"
        )
        assert 0 < task.timeout_s <= 180, f"{task.name}: timeout_s {task.timeout_s}"
