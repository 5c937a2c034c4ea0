"""The PostgreSQL server a run uses: a throwaway local cluster, or the one DATABASE_URL names.

Either way the run only ever creates, uses and drops databases whose names it made itself
(``fenceproof_<run id>_...``); nothing else on the server is read, written or dropped.
"""

from __future__ import annotations

import atexit
import glob
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.pq import TransactionStatus

from fenceproof.leftovers import CLUSTER_PARENT_ENV, CLUSTER_PREFIX, sweep
from fenceproof.models import ServerUnavailable
from fenceproof.procs import owner_line, write_owner

__all__ = ["ServerUnavailable", "Server", "open_server"]

HOW_TO_GET_ONE = (
    "set DATABASE_URL=postgresql://USER:PASSWORD@HOST:PORT/DBNAME (a role allowed to create databases), "
    "or install the PostgreSQL server binaries (e.g. `apt-get install postgresql`) so that `initdb` is on PATH "
    "or under /usr/lib/postgresql/*/bin (FENCEPROOF_PG_BINDIR names another directory)"
)
DRIVER_SCHEMES = ("postgresql", "postgres", "postgresql+asyncpg", "postgresql+psycopg", "postgresql+psycopg2")
PREFIX = "fenceproof_"
_OURS = re.compile(r"fenceproof_([0-9a-f]{8})_[a-z]+[0-9]+")  # what new_name() makes
LOCK_CLASS = 0x0F3CE  # first key of the advisory lock each run holds (the second is from its run id)
SHM_MIN_FREE = 1 << 30  # a cluster takes ~40 MB and each open database ~8 MB


class Server:
    """An open PostgreSQL server plus the databases this run made on it. Use as a context manager."""

    def __init__(
        self,
        *,
        source: str,
        params: dict[str, Any],
        start_s: float,
        cluster: _Cluster | None = None,
    ) -> None:
        self.source = source  # "local" or "env"
        self.start_s = start_s
        self.run_id = secrets.token_hex(4)
        self._params = params  # libpq keywords for the server, without dbname
        self._cluster = cluster
        self._lock = threading.RLock()
        self._created: list[str] = []
        self._issued: set[str] = set()
        self._counter = 0
        self._template: str | None = None
        self._closed = False
        self._seen_reconnects = 0
        self.reconnects = 0  # times the admin connection was lost (a block terminated it) and made again
        self.damaged = 0  # times ``damage`` found the run's state broken by a block
        self.swept: list[str] = []  # what dead runs had left on this server, removed when it opened
        self._admin: psycopg.Connection[Any] | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None
        try:
            self._admin = self._connect()
            version = self._admin.info.server_version
            self.server_version = f"{version // 10000}.{version % 10000}"
            if version < 130000:
                raise ServerUnavailable(f"PostgreSQL {self.server_version} is too old: 13 or newer is needed")
            row = self._execute(
                "SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user"
            ).fetchone()
            if not (row and row[0]):
                raise ServerUnavailable(
                    f"role {params.get('user')!r} may not create databases; {HOW_TO_GET_ONE}"
                )
            if cluster is None:
                self.swept = self._drop_dead_runs()
            self._watchdog = self._watch()
        except BaseException:
            if self._admin is not None:
                self._admin.close()
            if cluster is not None:
                cluster.stop()
            self._stop_watchdog()
            raise
        _guard.enter(self)

    # -- the admin connection ----------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        """The admin connection: named after the run and holding the run's advisory lock, so that other runs
        on the same server can tell this run is alive. If the database it names was dropped (by a block),
        template1 serves as well: the admin connection only runs CREATE/DROP DATABASE and pg_stat_activity."""
        options = {**self._params, "autocommit": True, "application_name": f"fenceproof-{self.run_id}"}
        try:
            conn = psycopg.connect(**options)
        except psycopg.OperationalError:
            if self._admin is None or options.get("dbname") == "template1":
                raise
            conn = psycopg.connect(**{**options, "dbname": "template1"})
        conn.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_CLASS, _lock_key(self.run_id)))
        return conn

    def _watch(self) -> subprocess.Popen[bytes]:
        """A small process that removes what this run made (its cluster, or its databases on DATABASE_URL's
        server, and its scratch folders) if this process dies without doing it (kill -9)."""
        env = {**os.environ, "FENCEPROOF_WATCH_CONNINFO": make_conninfo(**self._params)}
        cluster = str(self._cluster.dir) if self._cluster is not None else "-"
        return subprocess.Popen(
            [sys.executable, "-P", "-m", "fenceproof.leftovers", cluster, owner_line().strip(), self.run_id],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # a Ctrl-C at the terminal is for us, not for it
        )

    def _stop_watchdog(self) -> None:
        if self._watchdog is None:
            return
        assert self._watchdog.stdin is not None
        self._watchdog.stdin.write(b"done\n")  # it exits without touching anything
        self._watchdog.stdin.close()
        try:
            self._watchdog.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._watchdog.kill()
            self._watchdog.wait()
        self._watchdog = None

    def _execute(self, query: Any, params: Any = None) -> psycopg.Cursor[Any]:
        """Run one admin statement; a connection a block terminated is made again once and the statement
        retried (CREATE and DROP DATABASE either happened entirely or not at all)."""
        with self._lock:
            assert self._admin is not None
            try:
                return self._admin.execute(query, params)
            except psycopg.OperationalError:
                if (
                    not self._admin.closed
                    and self._admin.info.transaction_status != TransactionStatus.UNKNOWN
                ):
                    raise  # a real error on a healthy connection
            self._admin.close()
            self.reconnects += 1
            self._admin = self._connect()
            return self._admin.execute(query, params)

    def damage(self) -> list[str]:
        """What went wrong with the run's own state since the last call: its admin connection terminated,
        one of its databases dropped by someone else. A dropped template is made again (it is empty)."""
        problems = []
        with self._lock:
            ours = list(self._created)
            rows = self._execute(
                "SELECT name FROM unnest(%s::text[]) AS name WHERE name NOT IN (SELECT datname FROM pg_database)",
                (ours,),
            ).fetchall()
            if self.reconnects > self._seen_reconnects:
                problems.append("terminated the engine's own connection to PostgreSQL")
                self._seen_reconnects = self.reconnects
            for (name,) in rows:
                self._created.remove(name)
                problems.append(f"dropped the run's database {name}")
                if name == self._template:
                    self._template = None
                    self._execute(
                        sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name))
                    )
                    self._created.append(name)
                    self._template = name
        if problems:
            self.damaged += 1
        return problems

    def _drop_dead_runs(self) -> list[str]:
        """Drop the ``fenceproof_<run id>_*`` databases of runs that are gone: no session holds their advisory
        lock or carries their name, and no one is connected to any of them. Never any other database."""
        rows = self._execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'fenceproof\\_%' ORDER BY datname"
        ).fetchall()
        by_run: dict[str, list[str]] = {}
        for (name,) in rows:
            match = _OURS.fullmatch(name)
            if match and match[1] != self.run_id:
                by_run.setdefault(match[1], []).append(name)
        if not by_run:
            return []
        locked = {
            int(r[0])
            for r in self._execute(
                "SELECT objid::text::bigint FROM pg_locks"
                " WHERE locktype = 'advisory' AND classid = %s::oid AND objsubid = 2",
                (LOCK_CLASS,),
            ).fetchall()
        }
        sessions = self._execute(
            "SELECT coalesce(application_name, ''), coalesce(datname, '') FROM pg_stat_activity"
        ).fetchall()
        named = {app for app, _db in sessions} | {db for _app, db in sessions}
        removed = []
        for run_id, names in by_run.items():
            if _lock_key(run_id) in locked or f"fenceproof-{run_id}" in named or set(names) & named:
                continue  # that run (or something on its databases) is still alive
            for name in names:
                try:
                    self._execute(
                        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                    )
                except psycopg.Error as exc:  # another role's: not ours to drop
                    print(f"fenceproof: could not drop {name} of a dead run: {exc}".strip(), file=sys.stderr)
                    continue
                removed.append(f"database {name}")
        if removed:
            print(f"fenceproof: removed what killed runs left: {', '.join(removed)}", file=sys.stderr)
        return removed

    # -- databases ---------------------------------------------------------------------------------

    def new_name(self, kind: str = "db") -> str:
        """A database name no one has used: ``fenceproof_<run id>_<kind><n>``."""
        with self._lock:
            self._counter += 1
            name = f"{PREFIX}{self.run_id}_{kind}{self._counter}"
            self._issued.add(name)
            return name

    @property
    def params(self) -> dict[str, Any]:
        """libpq keywords of the server itself (host, port, user, ...), e.g. for a superuser test setup."""
        return dict(self._params)

    @property
    def created(self) -> tuple[str, ...]:
        """The databases this Server created and has not dropped yet."""
        return tuple(self._created)

    def create_template(self) -> str:
        """The run's empty template database, created on first call."""
        with self._lock:
            if self._template is None:
                self._template = self.create_database(name=self.new_name("tpl"))
            return self._template

    def create_database(self, template: str | None = None, name: str | None = None) -> str:
        """Create a fresh database (cloned from ``template``, one of ours; else empty) and return its name."""
        if template is not None:
            self._check_ours(template)
        with self._lock:
            self._check_open()
            name = name or self.new_name()
            if name not in self._issued or name in self._created:
                raise ValueError(f"{name!r} is not a fresh name from new_name()")
            self._execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(template or "template0")
                )
            )
            self._created.append(name)
            return name

    def drop_database(self, name: str) -> None:
        """Drop a database this Server created, disconnecting anyone still on it."""
        self._check_ours(name)
        with self._lock:
            self._execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            self._created.remove(name)
            if name == self._template:
                self._template = None

    def connections(self, dbname: str) -> list[dict[str, Any]]:
        """Client connections open on one of our databases (from pg_stat_activity)."""
        self._check_ours(dbname)
        with self._lock:
            cur = self._execute(
                "SELECT pid, state, extract(epoch FROM backend_start)::float8, application_name, query"
                " FROM pg_stat_activity"
                " WHERE datname = %s AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
                " ORDER BY backend_start",
                (dbname,),
            )
            keys = ("pid", "state", "backend_start", "application_name", "query")
            return [dict(zip(keys, row, strict=True)) for row in cur.fetchall()]

    def conninfo(self, dbname: str) -> str:
        """A libpq connection string for a database on this server (for psycopg). Building it touches nothing."""
        return make_conninfo(**{**self._params, "dbname": dbname})

    def async_url(self, dbname: str) -> str:
        """``postgresql+asyncpg://user:pw@host:port/dbname`` for a database on this server. Touches nothing."""
        p = self._params
        auth = quote(str(p.get("user", "")), safe="")
        if p.get("password"):
            auth += ":" + quote(str(p["password"]), safe="")
        host = str(p.get("host", "localhost"))
        port = p.get("port")
        if host.startswith("/"):  # a Unix socket directory
            return f"postgresql+asyncpg://{auth}@/{dbname}?host={quote(host)}" + (
                f"&port={port}" if port else ""
            )
        return f"postgresql+asyncpg://{auth}@{host}{f':{port}' if port else ''}/{dbname}"

    def _check_ours(self, name: str) -> None:
        if name not in self._created:
            raise ValueError(f"database {name!r} was not created by this run; refusing to touch it")

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this Server is closed")

    # -- lifetime ----------------------------------------------------------------------------------

    def close(self) -> None:
        """Drop every database this run created, stop a local cluster. Safe to call more than once."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        with _guard.closing(self):
            try:
                if self._cluster is None:  # a local cluster's databases go with its directory
                    for name in list(self._created):
                        self.drop_database(name)
            finally:
                if self._admin is not None:
                    self._admin.close()
                try:
                    if self._cluster is not None:
                        self._cluster.stop()
                finally:
                    self._stop_watchdog()

    def __enter__(self) -> Server:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class _Cluster:
    """A throwaway cluster in a temporary directory, run as the ``postgres`` user when we are root."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            if shutil.which("runuser") is None:
                raise ServerUnavailable(
                    f"running as root needs `runuser` to start PostgreSQL; {HOW_TO_GET_ONE}"
                )
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.dir = Path(tempfile.mkdtemp(prefix=CLUSTER_PREFIX, dir=_cluster_parent()))
        write_owner(self.dir)  # the next run removes the cluster if this process is killed
        self.data = self.dir / "data"
        self.port = 0
        self.running = False

    def start(self) -> None:
        try:
            if self.as_user:
                shutil.chown(self.dir, "postgres", "postgres")
            self._pg(
                "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                "--locale=C.UTF-8", "--no-sync", "--no-instructions",
            )  # fmt: skip
            for _attempt in range(3):
                self.port = _free_port()
                options = (
                    f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
                    " -c synchronous_commit=off -c full_page_writes=off"
                    # Dynamic shared memory in the data directory: a killed cluster leaves none in /dev/shm.
                    " -c dynamic_shared_memory_type=mmap"
                )
                # A session of its own: a Ctrl-C at the terminal must not shut the cluster down under us.
                result = self._pg(
                    "pg_ctl", "-D", str(self.data), "-l", str(self.dir / "log"), "-w", "-s", "-o", options, "start",
                    check=False, new_session=True,
                )  # fmt: skip
                if result.returncode == 0:
                    self.running = True
                    return
            raise ServerUnavailable(f"PostgreSQL did not start: {self.log_tail()}")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.running:
            for mode in ("fast", "immediate"):  # immediate if a fast shutdown does not finish
                try:
                    stopped = self._pg(
                        "pg_ctl", "-D", str(self.data), "-m", mode, "-t", "20", "-w", "-s", "stop"
                    )
                except (ServerUnavailable, subprocess.TimeoutExpired):
                    continue
                if stopped.returncode == 0:
                    break
            self.running = False
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self) -> str:
        try:
            return (self.dir / "log").read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"

    def _pg(
        self, tool: str, *args: str, check: bool = True, new_session: bool = False
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*self.as_user, str(self.bindir / tool), *args],
            capture_output=True,
            text=True,
            start_new_session=new_session,
            cwd=self.dir,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise ServerUnavailable(f"`{tool}` failed: {result.stderr.strip() or result.stdout.strip()}")
        return result


def _lock_key(run_id: str) -> int:
    return int(run_id, 16) >> 1  # 31 bits: an int4 that pg_locks shows unchanged as an oid


def _cluster_parent() -> str:
    """Where the throwaway cluster lives: tmpfs when there is one (creating a database makes ~900 files; on a
    busy disk that took 0.3 s instead of 15 ms), else /tmp, which the postgres user can reach (unlike a $TMPDIR
    under /root). FENCEPROOF_CLUSTER_PARENT names another folder (one the postgres user can reach)."""
    if os.environ.get(CLUSTER_PARENT_ENV):
        return os.environ[CLUSTER_PARENT_ENV]
    shm = "/dev/shm"  # noqa: S108 (mkdtemp makes a private, unpredictable directory in it)
    if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK):
        stat = os.statvfs(shm)
        if stat.f_bavail * stat.f_frsize >= SHM_MIN_FREE:  # not Docker's default 64 MB /dev/shm
            return shm
    return "/tmp"  # noqa: S108 (as above)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_bindir(env: Mapping[str, str]) -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``: FENCEPROOF_PG_BINDIR, PATH, /usr/lib/postgresql/*/bin."""
    if env.get("FENCEPROOF_PG_BINDIR"):
        candidates = [Path(env["FENCEPROOF_PG_BINDIR"])]
    else:
        on_path = shutil.which("initdb", path=env.get("PATH", ""))
        candidates = [Path(on_path).resolve().parent] if on_path else []
        newest_first = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
        candidates += [Path(p) for p in newest_first]
    for d in candidates:
        if all(os.access(d / tool, os.X_OK) for tool in ("initdb", "pg_ctl", "postgres")):
            return d
    return None


def _version_key(path: str) -> tuple[int, ...]:
    version = Path(path).parent.name
    return tuple(int(x) for x in version.split(".") if x.isdigit())


def parse_url(url: str) -> dict[str, Any]:
    """libpq keywords from a DATABASE_URL with any of the usual schemes (``+asyncpg``, ``postgres://``...)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in DRIVER_SCHEMES:
        raise ServerUnavailable(f"DATABASE_URL must start with one of {', '.join(DRIVER_SCHEMES)}://")
    try:
        params: dict[str, Any] = conninfo_to_dict(f"postgresql://{rest}")
    except psycopg.ProgrammingError as exc:
        raise ServerUnavailable(f"DATABASE_URL is not a valid PostgreSQL URL: {exc}") from None
    params.setdefault("dbname", "postgres")
    return params


def open_server(env: Mapping[str, str] = os.environ) -> Server:
    """Connect to DATABASE_URL's server, or else start a throwaway cluster from the local binaries."""
    t0 = time.perf_counter()
    swept = sweep()  # clusters and scratch folders of killed runs
    url = env.get("DATABASE_URL")
    if url:
        params = parse_url(url)
        params.setdefault("connect_timeout", 10)
        try:
            server = Server(source="env", params=params, start_s=time.perf_counter() - t0)
            server.swept[:0] = swept
            return server
        except psycopg.OperationalError as exc:
            raise ServerUnavailable(f"cannot connect to DATABASE_URL: {str(exc).strip()}") from None
    bindir = find_bindir(env)
    if bindir is None:
        raise ServerUnavailable(f"no PostgreSQL server available: {HOW_TO_GET_ONE}")
    if os.geteuid() == 0:
        try:
            subprocess.run(["id", "-u", "postgres"], check=True, capture_output=True)
        except (OSError, subprocess.CalledProcessError):
            raise ServerUnavailable(f"running as root needs a `postgres` user; {HOW_TO_GET_ONE}") from None
    cluster = _Cluster(bindir)
    cluster.start()
    params = {"host": "127.0.0.1", "port": cluster.port, "user": "postgres", "dbname": "postgres"}
    server = Server(source="local", params=params, start_s=time.perf_counter() - t0, cluster=cluster)
    server.swept[:0] = swept
    return server


class _SignalGuard:
    """While any Server is open: SIGTERM unwinds like Ctrl-C (so ``with``/``finally`` clean up), and a
    Server left open is closed at interpreter exit. Handlers are restored when the last one closes."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self._open: list[Server] = []
        self._saved: dict[int, Any] = {}
        self._lock = threading.Lock()

    def enter(self, server: Server) -> None:
        with self._lock:
            self._open.append(server)
            if len(self._open) == 1:
                atexit.register(self._close_all)
                if threading.current_thread() is threading.main_thread():
                    self._saved = {sig: signal.signal(sig, self._on_signal) for sig in self.SIGNALS}

    @contextmanager
    def closing(self, server: Server) -> Iterator[None]:
        """Ignore SIGINT/SIGTERM while ``server`` cleans up, so a second signal cannot cut it short."""
        main = threading.current_thread() is threading.main_thread()
        before = {sig: signal.signal(sig, signal.SIG_IGN) for sig in self.SIGNALS} if main else {}
        try:
            yield
        finally:
            with self._lock:
                if server in self._open:
                    self._open.remove(server)
                if not self._open:
                    atexit.unregister(self._close_all)
                    if main:
                        before.update(self._saved)
                        self._saved = {}
            for sig, handler in before.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        previous = self._saved.get(signum)
        if signum == signal.SIGINT and callable(previous):
            previous(signum, frame)
            return
        raise KeyboardInterrupt(f"received {signal.Signals(signum).name}; cleaning up")

    def _close_all(self) -> None:
        for server in list(self._open):
            server.close()


_guard = _SignalGuard()


def version_hint(env: Mapping[str, str] = os.environ) -> str:
    """The server version a run would use, found without starting a cluster: DATABASE_URL's server (asked),
    else the local binaries' ``postgres --version``. Used in cache keys; "" when neither answers."""
    url = env.get("DATABASE_URL")
    try:
        if url:
            params = {**parse_url(url), "connect_timeout": 10}
            with psycopg.connect(**params) as conn:
                return str(conn.info.server_version)
        bindir = find_bindir(env)
        if bindir is None:
            return ""
        done = subprocess.run(
            [str(bindir / "postgres"), "--version"], capture_output=True, text=True, timeout=30
        )
        return done.stdout.strip()
    except (psycopg.Error, ServerUnavailable, OSError, subprocess.TimeoutExpired):
        return ""
