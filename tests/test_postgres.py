"""The PostgreSQL lifecycle against a real server: databases, isolation, cleanup, and what happens without one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from runtime_helpers import block, database_names, superuser_conninfo

from fenceproof.postgres import PREFIX, Server, ServerUnavailable, open_server
from fenceproof.run import run_document

pytest_plugins = ["runtime_fixtures"]


def test_template_clone_carries_its_tables_and_rows(pg_server: Server) -> None:
    tpl = pg_server.create_template()
    assert pg_server.create_template() == tpl  # made once per run
    # A private template here: the session template must stay empty for the other tests.
    own_tpl = pg_server.create_database()
    with psycopg.connect(pg_server.conninfo(own_tpl), autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE users (id int PRIMARY KEY, name text); INSERT INTO users VALUES (1, 'ada')"
        )
    clone = pg_server.create_database(own_tpl)
    try:
        with psycopg.connect(pg_server.conninfo(clone)) as conn:
            assert conn.execute("SELECT id, name FROM users").fetchall() == [(1, "ada")]
            rows = pg_server.connections(clone)
            assert [r["pid"] for r in rows] == [conn.info.backend_pid]
            assert set(rows[0]) == {"pid", "state", "backend_start", "application_name", "query"}
            assert abs(rows[0]["backend_start"] - time.time()) < 60
        deadline = time.monotonic() + 5  # a closed connection's backend takes a moment to leave
        while pg_server.connections(clone) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert pg_server.connections(clone) == []
    finally:
        pg_server.drop_database(clone)
        pg_server.drop_database(own_tpl)
    assert clone not in database_names(pg_server)
    assert pg_server.async_url(tpl).startswith("postgresql+asyncpg://")
    assert pg_server.async_url(tpl).endswith(f"/{tpl}")
    assert pg_server.server_version.split(".")[0].isdigit()


def test_refuses_databases_it_did_not_create(pg_server: Server) -> None:
    for name in ("postgres", "template1", f"{PREFIX}{pg_server.run_id}_db999999"):
        with pytest.raises(ValueError, match="not created by this run"):
            pg_server.drop_database(name)
        with pytest.raises(ValueError, match="not created by this run"):
            pg_server.connections(name)
        with pytest.raises(ValueError, match="not created by this run"):
            pg_server.create_database(template=name)
    assert "postgres" in database_names(pg_server)


def test_database_url_leaves_everything_else_alone(pg_server: Server, upstream) -> None:
    other = f"other_{os.getpid()}"
    with psycopg.connect(superuser_conninfo(pg_server), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{other}"')
    try:
        with psycopg.connect(superuser_conninfo(pg_server, other), autocommit=True) as conn:
            conn.execute("CREATE TABLE keep (id int); INSERT INTO keep SELECT generate_series(1, 5)")
        p = pg_server.params
        url = f"postgresql+asyncpg://{p['user']}@{p['host']}:{p['port']}/{other}"
        with open_server({"DATABASE_URL": url}) as env_server:
            assert env_server.source == "env"
            ours = f"{PREFIX}{env_server.run_id}_"
            tpl = env_server.create_template()
            blocks = [
                block(3, "CREATE TABLE keep (id int); INSERT INTO keep VALUES (99);\n", lang="sql"),
                block(7, "import os\nprint(os.environ['DATABASE_URL'].rsplit('/', 1)[1])\n"),
            ]
            run = run_document(blocks, env_server, tpl, upstream.url)
            assert [r.status for r in run.records.values()] == ["ok", "ok"]
            assert run.records[7].stdout.startswith(ours)
            assert any(
                name.startswith(ours) for name in database_names(pg_server)
            )  # the template, still open
        assert not any(name.startswith(ours) for name in database_names(pg_server))
        with psycopg.connect(superuser_conninfo(pg_server, other)) as conn:
            assert conn.execute("SELECT array_agg(id ORDER BY id) FROM keep").fetchone() == ([1, 2, 3, 4, 5],)
    finally:
        with psycopg.connect(superuser_conninfo(pg_server), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{other}" WITH (FORCE)')


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg"])
def test_database_url_schemes(pg_server: Server, scheme: str) -> None:
    p = pg_server.params
    with open_server(
        {"DATABASE_URL": f"{scheme}://{p['user']}@{p['host']}:{p['port']}/postgres"}
    ) as env_server:
        name = env_server.create_database()
        assert name in database_names(pg_server)
        assert (
            env_server.async_url(name) == f"postgresql+asyncpg://{p['user']}@{p['host']}:{p['port']}/{name}"
        )
    assert name not in database_names(pg_server)


def test_no_binaries_and_no_url_says_how_to_get_a_server(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    with pytest.raises(ServerUnavailable) as info:
        open_server({"PATH": str(empty), "FENCEPROOF_PG_BINDIR": str(empty)})
    message = str(info.value)
    assert "DATABASE_URL" in message
    assert "apt-get install postgresql" in message


def test_unreachable_database_url_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(ServerUnavailable, match="cannot connect to DATABASE_URL"):
        open_server({"DATABASE_URL": "postgresql+asyncpg://nobody@127.0.0.1:1/nothing"})
    with pytest.raises(ServerUnavailable, match="must start with"):
        open_server({"DATABASE_URL": "mysql://root@127.0.0.1/db"})


SIGTERM_SCRIPT = """
import sys, time
from fenceproof.postgres import open_server
with open_server({ENV}) as server:
    name = server.create_database()
    print(server.run_id, server._cluster.dir if server._cluster else "-", flush=True)
    time.sleep(60)
"""


@pytest.mark.parametrize("source", ["env", "local"])
def test_sigterm_cleans_up(pg_server: Server, source: str) -> None:
    if source == "env":
        p = pg_server.params
        env = repr({"DATABASE_URL": f"postgresql://{p['user']}@{p['host']}:{p['port']}/postgres"})
    else:
        env = "{'PATH': '/usr/bin:/bin'}"
    proc = subprocess.Popen(
        [sys.executable, "-c", SIGTERM_SCRIPT.replace("{ENV}", env)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    run_id, cluster_dir = proc.stdout.readline().split()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) != 0
    if source == "env":
        assert not any(n.startswith(f"{PREFIX}{run_id}_") for n in database_names(pg_server))
    else:
        assert not Path(cluster_dir).exists()
        postmasters = subprocess.run(["pgrep", "-f", cluster_dir], capture_output=True, text=True).stdout
        assert postmasters == ""


HANDLERS_SCRIPT = """
import signal
from fenceproof.postgres import open_server
name = lambda: getattr(signal.getsignal(signal.SIGTERM), "__name__", str(signal.getsignal(signal.SIGTERM)))
print(name())
with open_server({ENV}) as server:
    print(name())
print(name())
"""


def test_signal_handlers_only_while_open(pg_server: Server) -> None:
    p = pg_server.params
    env = repr({"DATABASE_URL": f"postgresql://{p['user']}@{p['host']}:{p['port']}/postgres"})
    out = subprocess.run(
        [sys.executable, "-c", HANDLERS_SCRIPT.replace("{ENV}", env)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out == ["0", "_on_signal", "0"]  # SIG_DFL, ours, SIG_DFL again


def test_admin_connection_survives_being_terminated(pg_server: Server) -> None:
    """R2: a block may terminate every backend; the next statement reconnects, and the damage is reported."""
    app = f"fenceproof-{pg_server.run_id}"
    with psycopg.connect(superuser_conninfo(pg_server), autocommit=True) as conn:
        killed = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s",
            (app,),
        ).fetchone()
    assert killed == (1,)
    name = pg_server.create_database()
    assert name in database_names(pg_server)
    assert pg_server.damage() == ["terminated the engine's own connection to PostgreSQL"]
    assert pg_server.damage() == []  # reported once
    with psycopg.connect(superuser_conninfo(pg_server), autocommit=True) as conn:
        assert conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (app,)
        ).fetchone() == (1,)
        conn.execute(f'DROP DATABASE "{name}"')  # dropped behind its back
    assert pg_server.damage() == [f"dropped the run's database {name}"]
    assert name not in pg_server.created


def test_a_dropped_template_is_made_again(pg_server: Server) -> None:
    tpl = pg_server.create_template()
    with psycopg.connect(superuser_conninfo(pg_server), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{tpl}" WITH (FORCE)')
    assert pg_server.damage() == [f"dropped the run's database {tpl}"]
    assert tpl in database_names(pg_server) and pg_server.create_template() == tpl
    pg_server.drop_database(pg_server.create_database(tpl))
