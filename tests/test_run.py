"""Running a document's blocks in a worker against a real PostgreSQL: outcomes, locations, counts, leaks, limits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from runtime_helpers import DOC_REL, block, database_names

from fenceproof.forkserver import Forkserver
from fenceproof.models import Block
from fenceproof.postgres import PREFIX, Server
from fenceproof.procs import children
from fenceproof.run import DocumentRun, run_document
from fenceproof.upstream import Upstream

pytest_plugins = ["runtime_fixtures"]

MODELS = """\
import os

from sqlalchemy import ForeignKey
from sqlalchemy.ext.asyncio import AsyncAttrs, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(AsyncAttrs, DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    orders: Mapped[list["Order"]] = relationship(back_populates="user")


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    user: Mapped[User] = relationship(back_populates="orders")


engine = create_async_engine(os.environ["DATABASE_URL"])
Session = async_sessionmaker(engine)
"""

FILL = """\
async with engine.begin() as conn:
    await conn.run_sync(Base.metadata.create_all)
async with Session() as session:
    session.add_all([User(name=f"u{i}", orders=[Order(), Order()]) for i in range(5)])
    await session.commit()
"""


def make_run(pg_server: Server, template: str, upstream: Upstream, forkserver: Forkserver | None):
    def run(blocks: list[Block], **kwargs: float) -> DocumentRun:
        result = run_document(blocks, pg_server, template, upstream.url, forkserver=forkserver, **kwargs)
        assert sorted(result.records) == sorted(b.line for b in blocks)  # exactly one record per block
        assert not [name for name in pg_server.created if name != template]  # its database is dropped
        return result

    return run


@pytest.fixture
def run(pg_server: Server, template: str, upstream: Upstream):
    """Run a document in a freshly started worker."""
    return make_run(pg_server, template, upstream, None)


@pytest.fixture(params=["spawned", "forked"])
def run_both(request: pytest.FixtureRequest, pg_server: Server, template: str, upstream: Upstream):
    """Run a document in a freshly started worker, then in one forked from the fork server."""
    fork = request.getfixturevalue("forkserver") if request.param == "forked" else None
    return make_run(pg_server, template, upstream, fork)


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def gone_soon(pid: int) -> bool:
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return not alive(pid)


def test_lazy_load_on_async_session_raises_missing_greenlet(run_both) -> None:
    lazy = "async with Session() as session:\n    user = await session.get(User, 1)\n    print(len(user.orders))\n"
    result = run_both([block(10, MODELS + FILL), block(50, lazy), block(60, "await engine.dispose()\n")])
    assert result.records[10].status == "ok", result.records[10].traceback
    rec = result.records[50]
    assert rec.status == "raised"
    assert rec.exc_type == "sqlalchemy.exc.MissingGreenlet"
    assert rec.exc_mro[:3] == [
        "sqlalchemy.exc.MissingGreenlet",
        "sqlalchemy.exc.InvalidRequestError",
        "sqlalchemy.exc.SQLAlchemyError",
    ]
    assert "greenlet_spawn has not been called" in (rec.exc_text or "")
    assert rec.where == f"{DOC_REL}:53"  # the print line: block at 50, code from 51
    assert f'File "{DOC_REL}", line 53' in (rec.traceback or "")
    assert result.records[60].status == "ok"
    assert result.leaks == []


def test_top_level_await_shares_names_and_one_event_loop(run_both) -> None:
    first = (
        "import asyncio, os\n"
        "from sqlalchemy import text\n"
        "from sqlalchemy.ext.asyncio import create_async_engine\n"
        "engine = create_async_engine(os.environ['DATABASE_URL'])\n"
        "loop = asyncio.get_running_loop()\n"
        "queue = asyncio.Queue()\n"
        "waiter = asyncio.create_task(queue.get())\n"
        "await asyncio.sleep(0)\n"
    )
    plain = "async def which():\n    return asyncio.get_running_loop()\n\nassert asyncio.run(which()) is not loop\n"
    third = (
        "async with engine.connect() as conn:\n"
        "    value = (await conn.execute(text('select 41 + 1'))).scalar()\n"
        "assert asyncio.get_running_loop() is loop\n"
        "await queue.put('from block 3')\n"
        "print(value, await waiter)\n"
        "await engine.dispose()\n"
    )
    result = run_both([block(1, first), block(20, plain), block(30, third)])
    assert [r.status for r in result.records.values()] == ["ok", "ok", "ok"], result.records
    assert result.records[30].stdout == "42 from block 3\n"
    assert result.leaks == []


def test_namespace_is_main(run_both) -> None:
    code = (
        "import pickle\n"
        "from dataclasses import dataclass\n\n"
        "@dataclass\nclass Point:\n    x: int\n\n"
        "assert pickle.loads(pickle.dumps(Point(1))) == Point(1)\n"
        "if __name__ == '__main__':\n    print('guarded code runs')\n"
    )
    result = run_both([block(5, code)])
    assert result.records[5].status == "ok", result.records[5].traceback
    assert result.records[5].stdout == "guarded code runs\n"


def test_file_block_is_importable_and_maps_lines_back(run) -> None:
    broken = "def ratio(a, b):\n    return a / b\n"
    ini = "[alembic]\nscript_location = migrations\n"
    read_ini = "import configparser\nc = configparser.ConfigParser()\nc.read('alembic.ini')\nprint(c['alembic']['script_location'])\n"
    blocks = [
        block(10, MODELS, file="app/models.py"),
        block(40, broken, file="app/maths.py"),
        block(45, ini, lang="ini", file="alembic.ini"),
        block(50, "from app.models import User\nprint(User.__tablename__, User.__module__)\n"),
        block(60, "from app.maths import ratio\nratio(1, 0)\n"),
        block(70, read_ini),
    ]
    result = run(blocks)
    assert result.records[10].status == result.records[40].status == result.records[45].status == "ok"
    assert result.records[50].stdout == "users app.models\n"
    assert result.records[70].stdout == "migrations\n"
    rec = result.records[60]
    assert rec.exc_type == "ZeroDivisionError"
    assert rec.exc_mro == ["ZeroDivisionError", "ArithmeticError", "Exception", "BaseException"]
    assert rec.where == f"{DOC_REL}:42"  # `return a / b`, the second code line of the block at 40


def test_queries_are_counted_per_block(run_both) -> None:
    n_plus_one = (
        "from sqlalchemy import select\n"
        "async with Session() as session:\n"
        "    for user in (await session.scalars(select(User))).all():\n"
        "        await user.awaitable_attrs.orders\n"
    )
    selectin = (
        "from sqlalchemy.orm import selectinload\n"
        "async with Session() as session:\n"
        "    users = (await session.scalars(select(User).options(selectinload(User.orders)))).all()\n"
        "    assert sum(len(u.orders) for u in users) == 10\n"
    )
    sync_engine = (
        "from sqlalchemy import create_engine, text\n"
        "sync = create_engine(os.environ['DATABASE_URL'].replace('+asyncpg', '+psycopg'))\n"
        "with sync.connect() as conn:\n"
        "    conn.execute(text('select 1'))\n"
        "    conn.execute(text('select 2'))\n"
        "sync.dispose()\n"
        "await engine.dispose()\n"
    )
    blocks = [
        block(1, MODELS, file="app/models.py"),
        block(40, "from app.models import *\n" + FILL),
        block(50, n_plus_one, expect="queries:6"),
        block(60, selectin, expect="queries:2"),
        block(70, sync_engine),
    ]
    result = run_both(blocks)
    assert [r.status for r in result.records.values()] == ["ok"] * 5, result.records
    assert result.records[50].queries == 6  # 1 for the users + 1 lazy load per user
    assert result.records[60].queries == 2
    assert result.records[70].queries == 2  # an engine created in the block, sync driver
    assert result.leaks == []


def test_queries_not_counted_without_a_queries_expectation(run) -> None:
    assert run([block(1, "x = 1\n")]).records[1].queries is None


@pytest.mark.parametrize(
    "hang",
    [
        "while True:\n    pass\n",
        "import time\ntime.sleep(1000)\n",
        "import asyncio\n\nasync def stubborn():\n    while True:\n        try:\n            await asyncio.sleep(1000)\n"
        "        except asyncio.CancelledError:\n            pass\n\nawait asyncio.wait_for(stubborn(), 0.05)\n",
    ],
    ids=["busy-loop", "sleep", "swallows-cancel"],
)
def test_hanging_block_times_out_and_the_rest_is_not_run(run_both, hang: str) -> None:
    blocks = [
        block(1, "import os\nprint(os.getpid())\n"),
        block(10, hang, timeout="0.3"),
        block(30, "print('never')\n"),
        block(40, "print('never')\n"),
    ]
    result = run_both(blocks)
    assert result.records[10].status == "timeout"
    assert "0.3 s" in (result.records[10].exc_text or "")
    assert [result.records[n].status for n in (30, 40)] == ["not-run", "not-run"]
    assert gone_soon(int(result.records[1].stdout))


def test_default_timeout_applies(run) -> None:
    result = run([block(1, "import time\ntime.sleep(60)\n")], default_timeout=0.2)
    assert result.records[1].status == "timeout"


def test_undisposed_engine_is_a_leak_blamed_on_its_block(run_both) -> None:
    leaky = (
        "import os\nfrom sqlalchemy import text\nfrom sqlalchemy.ext.asyncio import create_async_engine\n"
        "engine = create_async_engine(os.environ['DATABASE_URL'])\n"
        "async with engine.connect() as conn:\n    await conn.execute(text('select 1'))\n"
    )
    result = run_both([block(1, "x = 1\n"), block(10, leaky), block(20, "y = 2\n")])
    assert [r.status for r in result.records.values()] == ["ok", "ok", "ok"]
    assert len(result.leaks) == 1
    leak = result.leaks[0]
    assert leak["line"] == 10
    assert leak["state"] == "idle"
    assert result.records[10].started <= leak["backend_start"] <= result.records[10].finished + 1


@pytest.mark.parametrize(
    ("crash", "says"),
    [("import os\nos._exit(3)\n", "exited with code 3"), ("import ctypes\nctypes.string_at(0)\n", "SIGSEGV")],
    ids=["exit", "segfault"],
)
def test_worker_crash_gives_an_error_record(run_both, crash: str, says: str) -> None:
    result = run_both([block(1, "x = 1\n"), block(5, crash), block(9, "print('never')\n")])
    assert result.records[1].status == "ok"
    assert result.records[5].status == "error"
    assert says in (result.records[5].exc_text or "")
    assert result.records[9].status == "not-run"


def test_sql_blocks_run_in_the_documents_database(run) -> None:
    create = (
        "CREATE TABLE notes (id int PRIMARY KEY, body text);\nINSERT INTO notes VALUES (1, '100% sure');\n"
    )
    read = (
        "import os, asyncpg\n"
        "conn = await asyncpg.connect(os.environ['DATABASE_URL'].replace('+asyncpg', ''))\n"
        "print(await conn.fetchval('select body from notes'))\nawait conn.close()\n"
    )
    broken = "SELECT 1;\nSELECT * FROM missing_table;\n"
    result = run([block(1, create, lang="sql"), block(10, read), block(20, broken, lang="sql")])
    assert result.records[1].status == "ok"
    assert result.records[10].stdout == "100% sure\n"
    rec = result.records[20]
    assert rec.exc_type == "psycopg.errors.UndefinedTable"
    assert "psycopg.ProgrammingError" in rec.exc_mro
    assert rec.where == f"{DOC_REL}:22"


def test_warnings_stdout_and_locations(run) -> None:
    code = (
        "import warnings\n\n"
        "class ShakyWarning(UserWarning):\n    pass\n\n"
        "warnings.warn('careful', ShakyWarning)\n"
        "warnings.warn('again', ShakyWarning)\n"
        "print('x' * 10000)\n"
    )
    boom = "def boom():\n    raise KeyError('k')\n"
    result = run(
        [block(1, code), block(20, boom), block(30, "boom()\n"), block(40, "input()\n"), block(50, "z = (\n")]
    )
    warned = result.records[1].warnings
    assert [w["message"] for w in warned] == ["careful", "again"]  # "always": repeats are kept
    assert warned[0]["category"] == "__main__.ShakyWarning"
    assert warned[0]["category_mro"] == [
        "__main__.ShakyWarning",
        "UserWarning",
        "Warning",
        "Exception",
        "BaseException",
    ]
    assert warned[0]["where"] == f"{DOC_REL}:7"
    assert 4096 < len(result.records[1].stdout) < 4200
    assert result.records[30].where == f"{DOC_REL}:22"  # deepest frame in the document: inside boom()
    assert result.records[40].exc_type == "EOFError"  # stdin is not the worker's command pipe
    assert result.records[50].exc_type == "SyntaxError"
    assert result.records[50].where == f"{DOC_REL}:51"


def test_environment_and_nothing_left_behind(run_both, upstream: Upstream) -> None:
    code = (
        "import os, subprocess, sys, urllib.request, json\n"
        "child = subprocess.Popen(['sleep', '300'])\n"
        "print(os.getpid(), child.pid, os.getcwd(), sys.path[0] == os.getcwd())\n"
        "print(json.load(urllib.request.urlopen(os.environ['UPSTREAM_URL'] + '/items/7'))['name'])\n"
        "print(os.environ['DATABASE_URL'].startswith('postgresql+asyncpg://'))\n"
    )
    result = run_both([block(1, code)])
    # The block ran, but the process it started outlived the document: that fails it, and it is ended.
    assert result.records[1].status == "error", result.records[1].traceback
    assert "left 1 process(es) running at the end of the document" in (result.records[1].exc_text or "")
    assert "(sleep 300)" in (result.records[1].exc_text or "")
    first, item, url_ok = result.records[1].stdout.splitlines()
    worker_pid, child_pid, cwd, on_path = first.split()
    assert (item, url_ok, on_path) == ("item-7", "True", "True")
    assert Path(cwd).name == "work" and not Path(cwd).parent.exists()
    assert gone_soon(int(worker_pid)) and gone_soon(int(child_pid))
    assert result.setup_s > 0 and result.teardown_s > 0


def test_empty_document_starts_nothing(pg_server: Server, upstream: Upstream) -> None:
    result = run_document([], pg_server, None, upstream.url)
    assert result.records == {} and result.leaks == []


def test_blocks_it_cannot_run_are_refused(pg_server: Server, upstream: Upstream) -> None:
    with pytest.raises(ValueError, match="cannot execute"):
        run_document([block(1, "echo hi\n", lang="bash")], pg_server, None, upstream.url)
    assert os.path.isdir("/tmp")


INTERRUPTED = """
import sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from runtime_helpers import block
from fenceproof.postgres import open_server
from fenceproof.run import run_document
code = "import os, time\\nopen({marker!r}, 'w').write(f'{{os.getpid()}} {{os.getcwd()}}')\\ntime.sleep(60)\\n"
with open_server({{"DATABASE_URL": {url!r}}}) as server:
    print(server.run_id, flush=True)
    run_document([block(1, code)], server, server.create_template(), "http://127.0.0.1:9")
"""


def test_interrupted_parent_leaves_nothing_behind(pg_server: Server, tmp_path: Path) -> None:
    p = pg_server.params
    marker = tmp_path / "worker.txt"
    script = INTERRUPTED.format(
        tests=str(Path(__file__).parent),
        marker=str(marker),
        url=f"postgresql://{p['user']}@{p['host']}:{p['port']}/postgres",
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    deadline = time.monotonic() + 30
    while not (marker.exists() and marker.read_text()) and time.monotonic() < deadline:
        time.sleep(0.02)
    worker_pid, cwd = marker.read_text().split()
    assert alive(int(worker_pid)) and Path(cwd).is_dir()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) != 0
    assert gone_soon(int(worker_pid))
    assert not Path(cwd).parent.exists()
    assert not any(n.startswith(f"{PREFIX}{run_id}_") for n in database_names(pg_server))


def test_documents_share_nothing(run_both) -> None:
    first = run_both(
        [block(1, "import sqlalchemy, os\nsqlalchemy.marked_by_doc_one = True\nos.environ['DOC'] = '1'\n")]
    )
    assert first.records[1].status == "ok"
    second = run_both(
        [
            block(
                1,
                "import sqlalchemy, os\nprint(hasattr(sqlalchemy, 'marked_by_doc_one'), 'DOC' in os.environ)\n",
            )
        ]
    )
    assert second.records[1].stdout == "False False\n"


def test_argv_is_empty_for_main_guards(run_both) -> None:
    code = "import argparse, sys\nargs = argparse.ArgumentParser().parse_args()\nprint(len(sys.argv))\n"
    assert run_both([block(1, code)]).records[1].stdout == "1\n"


def test_a_failure_right_after_the_fork_ends_the_worker_at_once(
    pg_server: Server, upstream: Upstream, forkserver: Forkserver
) -> None:
    """R1: the worker is ended before it has even started (the database cannot be made): no hang, no leftover."""
    started = time.monotonic()
    result = run_document(
        [block(1, "x = 1\n")], pg_server, "fenceproof_missing", upstream.url, forkserver=forkserver
    )
    assert time.monotonic() - started < 10
    assert result.records[1].status == "error"
    assert "not created by this run" in (result.records[1].exc_text or "")
    assert eventually(lambda: children(forkserver._proc.pid) == [])
    again = run_document([block(1, "print('ok')\n")], pg_server, None, upstream.url, forkserver=forkserver)
    assert again.records[1].stdout == "ok\n"


def test_a_stuck_fork_server_is_replaced(pg_server: Server, template: str, upstream: Upstream) -> None:
    """R1/R3: a fork server that stops answering (here: stopped) is killed and started again, within bounds."""
    with Forkserver(answer_timeout_s=2) as fork:
        stuck = fork._proc.pid
        os.kill(stuck, signal.SIGSTOP)
        started = time.monotonic()
        result = run_document([block(1, "print('ok')\n")], pg_server, template, upstream.url, forkserver=fork)
        assert result.records[1].stdout == "ok\n", result.records[1]
        assert time.monotonic() - started < 15
        assert fork.restarts == 1 and gone_soon(stuck)
        os.kill(fork._proc.pid, signal.SIGKILL)  # dead this time: the next document gets a new one
        result = run_document([block(1, "print('ok')\n")], pg_server, template, upstream.url, forkserver=fork)
        assert result.records[1].stdout == "ok\n" and fork.restarts == 2


def eventually(check, seconds: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not check() and time.monotonic() < deadline:
        time.sleep(0.02)
    return bool(check())


def test_a_daemon_ends_with_its_worker_even_when_the_worker_exits_first(run_both, tmp_path: Path) -> None:
    """Own session, no environment marker, its worker gone: its keeper (a subreaper) still ends it."""
    pids = tmp_path / "pids.txt"
    code = (
        "import os, subprocess\n"
        "child = subprocess.Popen(['sleep', '300'], start_new_session=True, env={})\n"
        f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{child.pid}}')\n"
        "os._exit(0)\n"
    )
    result = run_both([block(1, code), block(9, "print('never')\n")])
    assert result.records[1].status == "error"
    assert "exited with code 0" in (result.records[1].exc_text or "")
    assert result.records[9].status == "not-run"
    worker_pid, child_pid = (int(p) for p in pids.read_text().split())
    assert gone_soon(worker_pid) and gone_soon(child_pid)
