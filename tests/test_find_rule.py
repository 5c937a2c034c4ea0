"""scripts/find_rule.py: the right rule first for an error string, a symptom or a traceback it has never seen."""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from conftest import SKILL_DIR

from fenceproof.budget import markdown_body
from fenceproof.corpus import read_frontmatter
from fenceproof.index import rule_files
from fenceproof.postgres import Server

pytest_plugins = ["runtime_fixtures"]

SCRIPT = SKILL_DIR / "scripts" / "find_rule.py"


def _frontmatter(path: Path) -> dict[str, object]:
    return read_frontmatter(path.read_text(encoding="utf-8"), path.name)


RULES = {p.name: _frontmatter(p) for p in rule_files(SKILL_DIR)}
ERRORS = [(name, e) for name, fm in RULES.items() for e in fm.get("errors", [])]  # type: ignore[attr-defined]
SYMPTOMS = [(name, s) for name, fm in RULES.items() for s in fm.get("symptoms", [])]  # type: ignore[attr-defined]


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("find_rule", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


find_rule = _load_script()


def run(*args: str, stdin: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
        cwd=cwd or SKILL_DIR.parent.parent,
    )


def top(text: str) -> str:
    """The file name of the first rule the script prints for ``text``."""
    result = run("--limit", "1", text)
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.split()[0]).name


def disguise(error: str) -> str:
    """The error as another run would print it, inside a traceback: other numbers, addresses, quotes, paths."""
    text = re.sub(r"0x[0-9a-fA-F]+", "0x7f3a9c2e1b40", error)
    text = re.sub(r"\d+", lambda m: str(int(m.group()) * 7 + 3), text)
    text = text.replace("'", '"') if '"' not in text else text
    return (
        "Traceback (most recent call last):\n"
        '  File "/home/deploy/service/app/routes/orders.py", line 57, in list_orders\n'
        "    result = await handler(request)\n"
        '  File "/home/deploy/.venv/lib/python3.12/site-packages/starlette/routing.py", line 212, in app\n'
        f"{text}\n"
    )


# Real lines from tracebacks and logs, never pasted verbatim into a rule: each names a phrase that the rule
# it belongs to lists among its errors.
TRACEBACKS = [
    (
        "greenlet_spawn has not been called",
        "sqlalchemy.exc.MissingGreenlet: greenlet_spawn has not been called; can't call await_only() here. "
        "Was IO attempted in an unexpected place? (Background on this error at: https://sqlalche.me/e/20/xd2s)",
    ),
    (
        "is not available due to lazy='raise'",
        "sqlalchemy.exc.InvalidRequestError: 'Order.customer' is not available due to lazy='raise'",
    ),
    (
        "unhandled errors in a TaskGroup",
        "  + Exception Group Traceback (most recent call last):\n"
        '  |   File "/srv/worker/jobs.py", line 88, in refresh_all\n'
        "  |     async with asyncio.TaskGroup() as tg:\n"
        "  | ExceptionGroup: unhandled errors in a TaskGroup (3 sub-exceptions)\n"
        "  +-+---------------- 1 ----------------\n"
        "    | TimeoutError",
    ),
    (
        "QueuePool limit",
        "sqlalchemy.exc.TimeoutError: QueuePool limit of size 7 overflow 3 reached, connection timed out, "
        "timeout 12.50 (Background on this error at: https://sqlalche.me/e/20/3o7r)",
    ),
    (
        "another operation is in progress",
        "asyncpg.exceptions._base.InterfaceError: cannot perform operation: another operation is in progress",
    ),
    (
        "attached to a different loop",
        "RuntimeError: Task <Task pending name='Task-12' coro=<get_user() running at /app/api/users.py:33> "
        "cb=[_run_until_complete_cb() at /usr/lib/python3.11/asyncio/base_events.py:180]> got Future "
        "<Future pending cb=[Protocol._on_waiter_completed()]> attached to a different loop",
    ),
    (
        "Event loop is closed",
        'File "/app/tests/conftest.py", line 19, in engine\nRuntimeError: Event loop is closed',
    ),
    (
        "Task was destroyed but it is pending",
        "Task was destroyed but it is pending!\ntask: <Task pending name='Task-42' coro=<poll() running at "
        "/srv/worker.py:19> wait_for=<Future pending cb=[Task.task_wakeup()]>>",
    ),
    (
        "too many clients already",
        "asyncpg.exceptions.TooManyConnectionsError: sorry, too many clients already",
    ),
    ("was never awaited", "/app/main.py:27: RuntimeWarning: coroutine 'fetch_profile' was never awaited"),
    (
        "Exception in ASGI application",
        "ERROR:    Exception in ASGI application\nTraceback (most recent call last):\n"
        '  File "/srv/api/.venv/lib/python3.12/site-packages/uvicorn/protocols/http/httptools_impl.py", line 416, '
        "in run_asgi\n"
        '  File "/srv/api/.venv/lib/python3.12/site-packages/starlette/middleware/errors.py", line 186, in __call__\n'
        "    raise exc\n"
        "KeyError: 'customer_id'",
    ),
    (
        "Method Not Allowed",
        'INFO:     10.0.3.7:51234 - "DELETE /customers HTTP/1.1" 405 Method Not Allowed',
    ),
    (
        "Task exception was never retrieved",
        "Task exception was never retrieved\nfuture: <Task finished name='Task-9' "
        "coro=<audit() done, defined at /srv/app/audit.py:12> exception=ValueError('empty audit event')>",
    ),
    # SQLAlchemy 2.0 (2.0.58 against PostgreSQL 15) still named the asyncpg class in the message; 2.1 does not.
    (
        "could not serialize access due to concurrent update",
        "sqlalchemy.exc.DBAPIError: (sqlalchemy.dialects.postgresql.asyncpg.Error) <class "
        "'asyncpg.exceptions.SerializationError'>: could not serialize access due to concurrent update",
    ),
    (
        "canceling statement due to statement timeout",
        "sqlalchemy.exc.DBAPIError: (sqlalchemy.dialects.postgresql.asyncpg.Error) <class "
        "'asyncpg.exceptions.QueryCanceledError'>: canceling statement due to statement timeout",
    ),
]


# Programs that fail for real: their whole stderr (traceback, addresses, task names, this machine's paths) is
# the query, keyed by a phrase that the rule it belongs to lists among its errors.
FAILING_PROGRAMS = {
    "unhandled errors in a TaskGroup": """
import asyncio
async def fetch(n):
    await asyncio.sleep(0)
    raise ConnectionError(f"upstream {n} refused")
async def main():
    async with asyncio.TaskGroup() as tg:
        for n in range(3):
            tg.create_task(fetch(n))
asyncio.run(main())
""",
    "'float' and 'NoneType'": """
import asyncio
async def price():
    try:
        await asyncio.sleep(1)
        return 2.0
    except asyncio.CancelledError:
        return None
async def main():
    async with asyncio.timeout(0.01):
        p = await price()
    print(0.5 * p)
asyncio.run(main())
""",
    "greenlet_spawn has not been called": """
import asyncio
from sqlalchemy.util.concurrency import await_
async def query():
    await asyncio.sleep(0)
def lazy_attribute():
    return await_(query())
lazy_attribute()
""",
    "Event loop is closed": """
import asyncio
loop = asyncio.new_event_loop()
loop.close()
loop.run_until_complete(asyncio.sleep(0))
""",
    "attached to a different loop": """
import asyncio
state = {}
async def make():
    state["future"] = asyncio.get_running_loop().create_future()
async def use():
    await state["future"]
asyncio.run(make())
asyncio.run(use())
""",
    "Task was destroyed but it is pending": """
import asyncio
async def forever():
    await asyncio.Event().wait()
async def main():
    asyncio.create_task(forever())
    await asyncio.sleep(0)
loop = asyncio.new_event_loop()
loop.run_until_complete(main())
loop.close()
""",
    "Exception in ASGI application": """
import asyncio
import socket
import uvicorn
from fastapi import FastAPI
app = FastAPI()
@app.get("/orders/{order_id}")
async def get_order(order_id: int):
    raise RuntimeError(f"order {order_id}: connection to the ledger refused")
async def main():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    reader, writer = await asyncio.open_connection(*sock.getsockname())
    writer.write(b"GET /orders/7 HTTP/1.1\\r\\nHost: api\\r\\nConnection: close\\r\\n\\r\\n")
    await reader.read()
    writer.close()
    server.should_exit = True
    await task
asyncio.run(main())
""",
    "Task exception was never retrieved": """
import asyncio
async def audit(event):
    await asyncio.sleep(0)
    raise ValueError(f"empty audit event {event!r}")
async def main():
    background = set()
    task = asyncio.create_task(audit(""))
    background.add(task)
    task.add_done_callback(background.discard)
    del task
    await asyncio.sleep(0.05)
asyncio.run(main())
""",
    "was never awaited": """
import gc
async def fetch_profile():
    return 1
fetch_profile()
gc.collect()
""",
}

# Programs that fail against a real PostgreSQL (DATABASE_URL in their environment), keyed the same way.
_DB_SETUP = """
import asyncio, os
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
URL = os.environ["DATABASE_URL"]
async def table(engine):
    async with engine.begin() as conn:
        await conn.execute(text("create table if not exists stock (id int primary key, n int)"))
        await conn.execute(text("insert into stock values (1, 10), (2, 10) on conflict do nothing"))
"""
FAILING_DB_PROGRAMS = {
    "attached to a different loop": """
engine = create_async_engine(URL)
async def test_stock():
    async with engine.connect() as conn:
        await conn.execute(text("select 1"))
for _ in range(2):
    with asyncio.Runner() as runner:
        runner.run(test_stock())
""",
    "could not serialize access due to concurrent update": """
async def main():
    engine = create_async_engine(URL, isolation_level="SERIALIZABLE")
    await table(engine)
    async with engine.connect() as a, engine.connect() as b:
        await a.execute(text("select n from stock where id = 1"))
        await b.execute(text("select n from stock where id = 1"))
        await a.execute(text("update stock set n = n - 1 where id = 1"))
        await a.commit()
        await b.execute(text("update stock set n = n - 1 where id = 1"))
asyncio.run(main())
""",
    "deadlock detected": """
async def main():
    engine = create_async_engine(URL)
    await table(engine)
    async with engine.connect() as a, engine.connect() as b:
        await a.execute(text("set deadlock_timeout = '100ms'"))
        await a.execute(text("update stock set n = n + 1 where id = 1"))
        await b.execute(text("update stock set n = n + 1 where id = 2"))
        waiting = asyncio.create_task(b.execute(text("update stock set n = n + 1 where id = 1")))
        await asyncio.sleep(0.1)
        try:
            await a.execute(text("update stock set n = n + 1 where id = 2"))
        finally:
            await a.rollback()
            await waiting
asyncio.run(main())
""",
    "canceling statement due to statement timeout": """
async def main():
    engine = create_async_engine(URL, connect_args={"server_settings": {"statement_timeout": "100ms"}})
    async with AsyncSession(engine) as session:
        await session.execute(text("select pg_sleep(2)"))
asyncio.run(main())
""",
    "QueryCanceledError: canceling statement due to statement timeout": """
import asyncpg
async def main():
    conn = await asyncpg.connect(URL.replace("postgresql+asyncpg://", "postgresql://"), command_timeout=None)
    await conn.execute("set statement_timeout = 100")
    await conn.fetch("select pg_sleep(2)")
asyncio.run(main())
""",
    "canceling statement due to lock timeout": """
async def main():
    engine = create_async_engine(URL)
    await table(engine)
    async with AsyncSession(engine) as holder, AsyncSession(engine) as waiter:
        await holder.execute(text("select * from stock where id = 1 for update"))
        await waiter.execute(text("set local lock_timeout = '100ms'"))
        await waiter.execute(text("update stock set n = 0 where id = 1"))
asyncio.run(main())
""",
    "current transaction is aborted": """
from sqlalchemy.exc import DBAPIError
async def main():
    engine = create_async_engine(URL, connect_args={"server_settings": {"statement_timeout": "100ms"}})
    async with AsyncSession(engine) as session:
        try:
            await session.execute(text("select pg_sleep(2)"))
        except DBAPIError:
            pass
        await session.execute(text("select 1"))
asyncio.run(main())
""",
    "Can't reconnect until invalid transaction is rolled back": """
async def main():
    engine = create_async_engine(URL)
    async with AsyncSession(engine) as session:
        try:
            async with asyncio.timeout(0.1):
                await session.execute(text("select pg_sleep(2)"))
        except TimeoutError:
            pass
        await session.execute(text("select 1"))
asyncio.run(main())
""",
    "the underlying connection is closed": """
async def main():
    engine = create_async_engine(URL, connect_args={"server_settings": {"idle_in_transaction_session_timeout": "100ms"}})
    async with AsyncSession(engine) as session:
        await session.execute(text("select count(*) from pg_class"))
        await asyncio.sleep(0.5)
        await session.execute(text("select count(*) from pg_class"))
asyncio.run(main())
""",
}

# pytest runs that fail, keyed the same way: (test module, pyproject.toml). Their whole output is the query.
FAILING_PYTEST_RUNS = {
    "fixture 'event_loop' not found": (
        "def test_old_style(event_loop):\n    assert event_loop\n",
        '[tool.pytest.ini_options]\nasyncio_default_fixture_loop_scope = "function"\n',
    ),
    'option "asyncio_default_fixture_loop_scope" is unset': (
        "def test_anything():\n    pass\n",
        '[tool.pytest.ini_options]\nfilterwarnings = ["error"]\n',
    ),
}


def _rules_listing(phrase: str) -> set[str]:
    """The rules whose errors contain ``phrase``, or are the same error once normalised (other counts, ...)."""
    same = set(find_rule.words(phrase))
    return {
        name
        for name, error in ERRORS
        if phrase.lower() in error.lower() or set(find_rule.words(error)) == same
    }


def test_script_is_python38_syntax_and_standard_library_only() -> None:
    tree = ast.parse(SCRIPT.read_text(encoding="utf-8"), feature_version=(3, 8))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    imported |= {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported


@pytest.mark.parametrize("name", sorted(RULES))
def test_frontmatter_parser_agrees_with_pyyaml(name: str) -> None:
    text = (SKILL_DIR / "rules" / name).read_text(encoding="utf-8")
    mine, body = find_rule.parse_frontmatter(text)
    expected = RULES[name]
    for key in ("title", "category", "impact", "tags", "symptoms", "errors"):
        assert mine.get(key) == expected.get(key), key
    assert body.strip() == markdown_body(text).strip()


def test_frontmatter_parser_handles_the_yaml_forms_rules_use() -> None:
    text = (
        "---\n"
        'title: "Quoted: with a colon"\n'
        "impact: HIGH # a comment\n"
        "tags: [a, 'b, c', \"d\"]\n"
        "symptoms:\n"
        "  - plain item\n"
        "  - 'it''s quoted'\n"
        "  - a long item that is\n"
        "    folded over two lines\n"
        "errors:\n"
        '- "Back\\\\slash \\"quoted\\""\n'
        "impactDescription: >\n"
        "  folded\n"
        "  text\n"
        "metadata:\n"
        "  version: '1'\n"
        "---\n"
        "# Body\n"
    )
    mine, body = find_rule.parse_frontmatter(text)
    expected = yaml.safe_load(text.split("---\n")[1])
    for key in ("title", "impact", "tags", "symptoms", "errors"):
        assert mine[key] == expected[key], key
    assert mine["impactDescription"] == expected["impactDescription"].strip()
    assert body == "# Body"


def test_words_ignore_what_differs_between_runs() -> None:
    a = "RuntimeError: Task <Task pending name='Task-12' coro=<f() at /app/a.py:33> at 0x7f3a9c2e1b40> lost"
    b = 'RuntimeError: Task <Task pending name="Task-907" coro=<f() at C:\\srv\\b.py:1> at 0x55d0aa01> lost'
    assert set(find_rule.words(a)) - {"app"} == set(find_rule.words(b)) - {"srv"}
    assert "7f3a9c2e1b40" not in " ".join(find_rule.words(a))
    assert find_rule.words("QueuePool limit of size 7 overflow 3") == find_rule.words(
        "QueuePool limit of size 20 overflow 10"
    )
    camel = set(find_rule.words("sqlalchemy.exc.MissingGreenlet"))
    assert set(find_rule.words("missing greenlet MissingGreenlet")) <= camel
    assert find_rule.words("cancelled") == find_rule.words("cancel") == find_rule.words("cancelling")
    assert (
        find_rule.words("N+1 queries")
        == find_rule.words("n + 1 query")
        == find_rule.words("n-plus-one query")
    )


@pytest.mark.parametrize(("rule", "error"), ERRORS, ids=[f"{r}:{e[:40]}" for r, e in ERRORS])
def test_each_listed_error_finds_its_rule_first(rule: str, error: str) -> None:
    assert top(error) in {rule} | _rules_listing(error)


@pytest.mark.parametrize(("rule", "error"), ERRORS, ids=[f"{r}:{e[:40]}" for r, e in ERRORS])
def test_each_listed_error_in_a_new_traceback_finds_its_rule_first(rule: str, error: str) -> None:
    assert top(disguise(error)) in {rule} | _rules_listing(error)


@pytest.mark.parametrize(("rule", "symptom"), SYMPTOMS, ids=[f"{r}:{s[:40]}" for r, s in SYMPTOMS])
def test_each_listed_symptom_finds_its_rule_first(rule: str, symptom: str) -> None:
    assert top(symptom) == rule


@pytest.mark.parametrize(("phrase", "line"), TRACEBACKS, ids=[p for p, _ in TRACEBACKS])
def test_real_traceback_lines_find_the_rule_that_lists_the_error(phrase: str, line: str) -> None:
    expected = _rules_listing(phrase)
    if not expected:
        pytest.skip(f"no rule lists an error containing {phrase!r} yet")
    assert line not in {e for _, e in ERRORS}, "must be a line the rules do not list verbatim"
    assert top(line) in expected


def _assert_output_finds_the_rule(phrase: str, command: list[str], cwd: Path, env: dict[str, str]) -> None:
    """Run a command that fails; its whole output must contain ``phrase`` and rank a rule listing it first."""
    expected = _rules_listing(phrase)
    if not expected:
        pytest.skip(f"no rule lists an error containing {phrase!r} yet")
    failed = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=cwd, env=env)
    output = failed.stdout + failed.stderr
    assert phrase.strip("'").lower() in output.lower(), output
    result = run("-", stdin=output)
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.split()[0]).name in expected, output + result.stdout


@pytest.mark.parametrize("phrase", sorted(FAILING_PROGRAMS))
def test_stderr_of_a_real_failure_finds_the_rule_that_lists_the_error(phrase: str, tmp_path: Path) -> None:
    program = tmp_path / "service.py"
    program.write_text(FAILING_PROGRAMS[phrase], encoding="utf-8")
    command = [sys.executable, "-W", "default", str(program)]
    _assert_output_finds_the_rule(phrase, command, tmp_path, dict(os.environ))


@pytest.mark.parametrize("phrase", sorted(FAILING_DB_PROGRAMS))
def test_stderr_of_a_real_database_failure_finds_the_rule_that_lists_the_error(
    phrase: str, tmp_path: Path, pg_server: Server
) -> None:
    program = tmp_path / "service.py"
    program.write_text(_DB_SETUP + FAILING_DB_PROGRAMS[phrase], encoding="utf-8")
    name = pg_server.create_database()
    try:
        env = {**os.environ, "DATABASE_URL": pg_server.async_url(name)}
        _assert_output_finds_the_rule(phrase, [sys.executable, "-W", "default", str(program)], tmp_path, env)
    finally:
        pg_server.drop_database(name)


@pytest.mark.parametrize("phrase", sorted(FAILING_PYTEST_RUNS))
def test_output_of_a_failing_pytest_run_finds_the_rule_that_lists_the_error(
    phrase: str, tmp_path: Path
) -> None:
    module, config = FAILING_PYTEST_RUNS[phrase]
    (tmp_path / "test_service.py").write_text(module, encoding="utf-8")
    (tmp_path / "pyproject.toml").write_text(config, encoding="utf-8")
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_service.py"]
    _assert_output_finds_the_rule(phrase, command, tmp_path, dict(os.environ))


def test_prints_path_and_title_best_first_up_to_the_limit() -> None:
    name, error = ERRORS[0]
    result = run(error)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert 1 <= len(lines) <= 3
    path, title = lines[0].split("  ", 1)
    assert path == f"skills/python-backend/rules/{name}"
    assert title == RULES[name]["title"]
    assert len(run("--limit", "1", error).stdout.splitlines()) == 1
    scores = [
        float(x.split()[0])
        for x in run("--scores", "--limit", "50", "asyncio sqlalchemy").stdout.splitlines()
    ]
    assert scores == sorted(scores, reverse=True) and scores


def test_reads_a_traceback_from_standard_input() -> None:
    name, error = ERRORS[-1]
    result = run("-", stdin=disguise(error))
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.split()[0]).name in {name} | _rules_listing(error)


def test_prints_absolute_paths_when_run_from_elsewhere(tmp_path: Path) -> None:
    result = run(ERRORS[0][1], cwd=tmp_path)
    assert Path(result.stdout.split()[0]).is_absolute()
    assert Path(result.stdout.split()[0]).is_file()


def test_no_match_exits_1_and_points_at_the_index() -> None:
    result = run("zzqx wibble")
    assert result.returncode == 1
    assert result.stdout == ""
    assert "SKILL.md" in result.stderr
