"""The evals: every grader passes its reference and alternatives and fails every buggy solution; the
``fenceproof eval grade`` and ``eval run`` commands, end to end, with scripted agents instead of a model."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
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
def grades(server: Server, request: pytest.FixtureRequest) -> Iterator[dict[str, Future[Grade]]]:
    """The solutions this session's tests ask about, graded in the background as soon as the first asks."""
    wanted = {
        item.callspec.id
        for item in request.session.items
        if getattr(item, "originalname", "") == "test_grader_verdict" and hasattr(item, "callspec")
    }
    with Grader(server) as grader, ThreadPoolExecutor(PARALLEL) as pool:
        yield {
            f"{t.name}/{label}": pool.submit(grader.grade, t, folder)
            for t, label, folder, _ in SOLUTIONS
            if f"{t.name}/{label}" in wanted
        }


def _explain(grade: Grade) -> str:
    lines = [f"{c.test}: {c.message}" for c in grade.failed] or [grade.log[-3000:]]
    return "\n".join(lines)


@pytest.mark.parametrize(
    ("task", "label", "folder", "good"),
    SOLUTIONS,
    ids=[f"{t.name}/{label}" for t, label, _, _ in SOLUTIONS],
)
def test_grader_verdict(
    grades: dict[str, Future[Grade]],
    task: Task,
    label: str,
    folder: Path,
    good: bool,
    record_property: Callable[[str, object], None],
) -> None:
    grade = grades[f"{task.name}/{label}"].result(timeout=600)
    record_property("grade_seconds", grade.seconds)
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
    folder = EVALS / "tasks" / "request-id" / "reference"
    before = _tree_digest(folder)
    report = tmp_path / "grade.json"
    done = _fenceproof(server, "eval", "grade", "request-id", str(folder), "--report", str(report))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("PASS request-id"), done.stdout
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
        server, "eval", "run", "--tasks", "fanout", "request-id", "--repeat", "1",
        "--condition", f"reference={copy_reference}", "--condition", f"buggy={copy_buggy}",
        "--out", str(out), "--jobs", "2",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads(out.read_text())
    summary = {(row["condition"], row["task"]): row for row in data["summary"]}
    assert summary[("reference", "all")]["passed"] == 2 and summary[("reference", "all")]["runs"] == 2
    assert summary[("buggy", "all")]["passed"] == 0 and summary[("buggy", "all")]["runs"] == 2
    assert (
        summary[("reference", "fanout")]["ci95"][1] == 1.0 and summary[("buggy", "request-id")]["passed"] == 0
    )
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


# -- graderlib's own instruments ----------------------------------------------------------------------


def test_the_statement_proxy_counts_every_statement_of_either_driver(server: Server) -> None:
    import asyncio

    import asyncpg
    import psycopg

    sys.path.insert(0, str(EVALS))
    try:
        from graderlib.pgproxy import PgProxy
        from graderlib.postgres import Statements
    finally:
        sys.path.remove(str(EVALS))
    dbname = server.create_database()
    try:
        params = {**server.params, "dbname": dbname}
        proxy = PgProxy(str(params["host"]), int(params["port"]))
        try:
            via = Statements(proxy, params)
            with psycopg.connect(via.pg_url, autocommit=True) as conn:
                for n in range(3):  # extended protocol: one Execute each
                    conn.execute("SELECT %s::int", (n,))
                conn.execute("SELECT 1; SELECT 2")  # simple protocol: one Query
            assert via.settle(quiet_s=0.05) == 4, via.log

            async def five() -> None:
                conn = await asyncpg.connect(via.pg_url)
                try:
                    mark = via.count
                    for n in range(5):  # prepared once, then cached: still one Execute per call
                        await conn.fetchval("SELECT $1::int", n)
                    assert via.count - mark == 5, via.since(mark)
                finally:
                    await conn.close()

            asyncio.run(five())
            for _ in range(100):  # the proxy's thread notices the close a moment later
                if via.open_connections == 0:
                    break
                time.sleep(0.02)
            assert via.open_connections == 0
        finally:
            proxy.close()
    finally:
        server.drop_database(dbname)


def test_the_upstream_records_a_client_that_leaves() -> None:
    import asyncio

    import httpx2

    sys.path.insert(0, str(EVALS))
    try:
        from graderlib.upstream import Upstream
    finally:
        sys.path.remove(str(EVALS))

    async def main(url: str) -> None:
        async with httpx2.AsyncClient() as client:
            try:
                async with asyncio.timeout(0.3):
                    await client.get(f"{url}/hang")
            except TimeoutError:
                pass
            assert (await client.get(f"{url}/json/4")).json() == {"n": 4}

    with Upstream() as upstream:
        asyncio.run(main(upstream.url))
        assert upstream.wait_idle(3.0)
        hang, ok = upstream.requests
        assert hang.path == "/hang" and hang.client_gone and hang.end is not None, hang
        assert ok.path == "/json/4" and not ok.client_gone, ok


def test_a_hanging_grader_is_stopped_with_everything_it_started(server: Server, tmp_path: Path) -> None:
    task_dir = tmp_path / "hangs"
    (task_dir / "grader").mkdir(parents=True)
    (task_dir / "reference").mkdir()
    (task_dir / "task.md").write_text("Never finishes.\n")
    (task_dir / "task.toml").write_text('rules = ["asyncio-cancellation"]\ntimeout_s = 3\n')
    pid_file = tmp_path / "child.pid"
    (task_dir / "grader" / "test_hang.py").write_text(
        "import subprocess, time\n"
        "def test_hangs():\n"
        "    child = subprocess.Popen(['sleep', '300'])\n"
        f"    open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "    time.sleep(300)\n"
    )
    from fenceproof.evals.tasks import load_task

    with Grader(server) as grader:
        grade = grader.grade(load_task(task_dir), task_dir / "reference")
    assert not grade.passed and grade.seconds < 15, grade
    assert [c.message for c in grade.failed] == ["timed out after 3 s (the code hung?)"], grade.checks
    child = int(pid_file.read_text())
    for _ in range(100):
        if not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]:
            break
        time.sleep(0.05)
    else:
        raise AssertionError(f"the grader's child process {child} outlived the grade")


def test_pass_rate_intervals() -> None:
    from fenceproof.evals.stats import Rate

    assert Rate(0, 0).interval == (0.0, 1.0)
    low, high = Rate(0, 5).interval
    assert low == 0.0 and round(high, 3) == 0.434
    low, high = Rate(5, 5).interval
    assert round(low, 3) == 0.566 and high == 1.0
    assert Rate(3, 10).cell() == "3/10 30% [11%-60%]"
