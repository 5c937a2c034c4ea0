"""Blocks that attack the run, and runs that are killed: ``fenceproof verify`` as a user runs it.

Every run here carries a unique environment variable, inherited by everything it starts (the fork server, the
workers, what blocks start, the cluster's postmaster and watchdog); afterwards no live process may carry it, no
directory it made may be left, and no database of it may be left on the server.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from runtime_helpers import database_names, superuser_conninfo
from skill_factory import make_skill

from fenceproof.corpus import load_corpus
from fenceproof.leftovers import CLUSTER_PARENT_ENV, CLUSTER_PARENTS, CLUSTER_PREFIX, DOC_PREFIX
from fenceproof.models import ConfigError
from fenceproof.postgres import PREFIX, Server, open_server
from fenceproof.procs import OWNER_FILE, alive

RUN_TIMEOUT_S = 150


def processes_with(env_marker: str) -> list[tuple[int, str]]:
    """Live processes whose environment holds ``env_marker`` (NAME=value), with their command lines."""
    needle = env_marker.encode() + b"\0"
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            env = Path(f"/proc/{entry}/environ").read_bytes()
            command = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if (env.startswith(needle) or b"\0" + needle in env) and alive(int(entry)):
            found.append((int(entry), command))
    return found


def dirs_owned_by(pid: int, env: dict[str, str] | None = None) -> list[Path]:
    """Clusters and scratch folders whose owner file names ``pid``, where a run with ``env`` makes them."""
    env = env or {}
    parents = [env[CLUSTER_PARENT_ENV]] if env.get(CLUSTER_PARENT_ENV) else list(CLUSTER_PARENTS)
    patterns = [f"{parent}/{CLUSTER_PREFIX}*" for parent in parents]
    patterns.append(f"{env.get('TMPDIR') or tempfile.gettempdir()}/{DOC_PREFIX}*")
    out = []
    for pattern in patterns:
        for d in glob.glob(pattern):
            try:
                if (Path(d) / OWNER_FILE).read_text().split()[0] == str(pid):
                    out.append(Path(d))
            except (OSError, IndexError):
                continue
    return out


def eventually(check, seconds: float = 15.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return bool(check())


class Run:
    """One ``fenceproof verify`` in a subprocess, marked so that everything it starts can be found."""

    def __init__(self, root: Path, env: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> None:
        self.marker = f"FENCEPROOF_HOSTILE_TEST={uuid.uuid4().hex}"
        name, value = self.marker.split("=")
        base = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        full_env = {**base, "NO_COLOR": "1", "COLUMNS": "200", name: value, **(env or {})}
        self.root = root
        self.env = env or {}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fenceproof.cli", "verify", *args],
            cwd=root,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stdout = self.stderr = ""
        self.postmasters_at_kill: list[int] = []

    def finish(self) -> int:
        started = time.monotonic()
        self.stdout, self.stderr = self.proc.communicate(timeout=RUN_TIMEOUT_S)
        self.elapsed = time.monotonic() - started
        return self.proc.returncode

    def outcomes(self) -> dict[tuple[str, int], tuple[str, str]]:
        data = json.loads((self.root / "build" / "fenceproof" / "report.json").read_text())
        return {
            (b["path"].rsplit("/", 1)[-1], b["line"]): (b["outcome"], b.get("message") or "")
            for b in data["blocks"]
        }

    def postmasters(self) -> list[int]:
        """The postmaster pids of the clusters this run made (the postmaster does not carry the marker)."""
        pids = []
        for d in dirs_owned_by(self.proc.pid, self.env):
            try:
                pids.append(int((d / "data" / "postmaster.pid").read_text().split()[0]))
            except (OSError, IndexError, ValueError):
                continue
        return pids

    def assert_nothing_left(self, postmasters: list[int] = ()) -> None:  # type: ignore[assignment]
        assert eventually(lambda: not processes_with(self.marker)), processes_with(self.marker)
        left = lambda: dirs_owned_by(self.proc.pid, self.env)  # noqa: E731
        assert eventually(lambda: not left()), left()
        assert eventually(lambda: not any(alive(pid) for pid in postmasters)), postmasters


def skill(root: Path, hostile: str, next_doc: bool = True, lang: str = "python") -> Path:
    """Rule a (the hostile block at line 12 of the file), then rule b, a plain block that must still pass."""
    rules = {"asyncio-a.md": f"# A\n\n```{lang}\n{hostile}```\n"}
    if next_doc:
        rules["asyncio-b.md"] = "# B\n\n```python\nprint('b ran')\n```\n"
    make_skill(root, rules)
    return root


HOSTILE_LINE = 12  # frontmatter (9 lines), "# A", a blank line, then the fence


def assert_failed_and_named(run: Run, says: str | tuple[str, ...], rc: int = 1) -> None:
    assert run.finish() == rc, run.stdout + run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    outcome, message = run.outcomes()[("asyncio-a.md", HOSTILE_LINE)]
    assert outcome == "failed"
    assert any(text in message for text in ((says,) if isinstance(says, str) else says)), message
    assert f"asyncio-a.md:{HOSTILE_LINE}" in run.stdout
    assert run.outcomes()[("asyncio-b.md", 12)][0] == "passed"  # the run went on
    run.assert_nothing_left()


@pytest.fixture(scope="module")
def own_server() -> Iterator[Server]:
    """A cluster of its own for the DATABASE_URL cases: their blocks terminate every backend on it."""
    with open_server({}) as server:
        yield server


def own_url(server: Server) -> str:
    p = server.params
    return f"postgresql://{p['user']}@{p['host']}:{p['port']}/postgres"


DROP_OTHERS = """\
import os

import psycopg

with psycopg.connect(os.environ["DATABASE_URL"].replace("+asyncpg", ""), autocommit=True) as conn:
    mine = conn.execute("SELECT current_database()").fetchone()[0]
    names = conn.execute("SELECT datname FROM pg_database WHERE NOT datistemplate").fetchall()
    for (name,) in names:
        if name != mine:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
"""

TERMINATE_ALL = """\
import os

import psycopg

with psycopg.connect(os.environ["DATABASE_URL"].replace("+asyncpg", ""), autocommit=True) as conn:
    conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid()")
"""


def test_block_that_drops_every_other_database(tmp_path: Path) -> None:
    """R1: the run's template goes; the next document still starts (no 30 s hang, no traceback)."""
    # One document at a time here; test_in_parallel_... below covers -j, where the documents are run again.
    run = Run(skill(tmp_path, DROP_OTHERS), args=("-j", "1"))
    assert_failed_and_named(run, "dropped the run's database fenceproof_")
    assert run.elapsed < 60


@pytest.mark.parametrize("source", ["local", "env"])
def test_block_that_terminates_every_backend(
    tmp_path: Path, source: str, request: pytest.FixtureRequest
) -> None:
    """R2: the engine's admin connection is killed too; it reconnects, and nothing of the run stays."""
    env = {}
    if source == "env":
        server = request.getfixturevalue("own_server")
        before = database_names(server)
        env = {"DATABASE_URL": own_url(server)}
    run = Run(skill(tmp_path, TERMINATE_ALL), env, args=("-j", "1"))  # serial, as above
    assert_failed_and_named(run, "terminated the engine's own connection to PostgreSQL")
    if source == "env":
        assert {n for n in database_names(server) if n.startswith(PREFIX)} <= before


def test_block_that_kills_its_workers_parent(tmp_path: Path) -> None:
    """R3: the worker's parent (its keeper) dies, and the worker with it; the block fails, named; the other
    documents, running at the same time from the same fork server, are not touched."""
    run = Run(skill(tmp_path, "import os\nimport signal\n\nos.kill(os.getppid(), signal.SIGKILL)\n"))
    # Either the worker is killed before it answers, or its answer comes first and the check after it sees.
    assert_failed_and_named(run, ("killed its worker's parent process", "killed by signal SIGKILL"))


KILL_FORK_SERVER = """\
import os
import signal
from pathlib import Path

keeper = os.getppid()
server = int(Path(f"/proc/{keeper}/stat").read_text().rsplit(")", 1)[1].split()[1])
os.kill(server, signal.SIGKILL)
"""


def test_block_that_kills_the_fork_server(tmp_path: Path) -> None:
    """R3: the fork server itself dies; the block fails, named, and a new fork server serves what follows."""
    run = Run(skill(tmp_path, KILL_FORK_SERVER), args=("-j", "1"))  # serial, as above
    assert_failed_and_named(run, ("killed its worker's parent process", "killed with the fork server"))


NEIGHBOUR = """\
import os
import time

import psycopg

with psycopg.connect(os.environ["DATABASE_URL"].replace("+asyncpg", "")) as conn:
    time.sleep(3)  # while the hostile block beside it runs
    print(conn.execute("SELECT 1").fetchone())
"""


@pytest.mark.parametrize(
    ("hostile", "says"),
    [
        (DROP_OTHERS, "dropped the run's database fenceproof_"),
        (TERMINATE_ALL, "terminated the engine's own connection to PostgreSQL"),
        (KILL_FORK_SERVER, ("killed its worker's parent process", "killed with the fork server")),
    ],
    ids=["drops-databases", "terminates-backends", "kills-fork-server"],
)
def test_in_parallel_a_hostile_block_is_named_and_the_documents_beside_it_keep_their_outcome(
    tmp_path: Path, hostile: str, says: str | tuple[str, ...]
) -> None:
    """Under -j the block breaks what the documents running beside it share; they are run again one at a
    time, so the hostile block is the one that fails, and the blame is not on a neighbour."""
    rules = {
        "asyncio-a.md": f"# A\n\n```python\n{hostile}```\n",
        "asyncio-b.md": f"# B\n\n```python\n{NEIGHBOUR}```\n",
    }
    make_skill(tmp_path, rules)
    run = Run(tmp_path, args=("-j", "2"))
    assert_failed_and_named(run, says)
    assert "2 documents were run again one at a time" in run.stderr, run.stderr


OWN_SESSION = """\
import os
import subprocess
import time

detached = subprocess.Popen(["sleep", "300"], start_new_session=True)  # noqa: S603, S607
pid = os.fork()
if pid == 0:  # a classic daemon: fork, setsid, fork again, parent exits
    os.setsid()
    if os.fork() == 0:
        time.sleep(300)
    os._exit(0)
os.waitpid(pid, 0)
time.sleep(0.2)
"""


def test_block_that_starts_processes_in_their_own_session(tmp_path: Path) -> None:
    run = Run(skill(tmp_path, OWN_SESSION))
    assert_failed_and_named(run, "left 2 process(es) running at the end of the document")
    message = run.outcomes()[("asyncio-a.md", HOSTILE_LINE)][1]
    assert "(sleep 300)" in message and "(a fork of the worker)" in message


def test_block_that_detaches_a_process_and_ends_its_worker(tmp_path: Path) -> None:
    code = (
        "import os\nimport subprocess\n\n"
        "subprocess.Popen(['sleep', '300'], start_new_session=True)  # noqa: S603, S607\n"
        "subprocess.Popen(['sleep', '301'], start_new_session=True, env={})  # noqa: S603, S607\n"
        "os._exit(0)\n"
    )
    run = Run(skill(tmp_path, code))
    assert_failed_and_named(run, "exited with code 0")


def test_block_that_exhausts_memory(tmp_path: Path) -> None:
    code = "chunks = []\nwhile True:\n    chunks.append(b'x' * 50_000_000)\n"
    run = Run(skill(tmp_path, code), {"FENCEPROOF_WORKER_MEMORY_MIB": "1024"})
    assert_failed_and_named(run, "MemoryError")


SLEEPER = "import time\n\nopen({marker!r}, 'w').write('started')\ntime.sleep(120)\n"


def start_and_kill(tmp_path: Path, env: dict[str, str] | None = None, watchdog_too: bool = False) -> Run:
    """Start a run whose block sleeps, SIGKILL it once the block runs (its cluster's watchdog first)."""
    marker = tmp_path / "started.txt"
    run = Run(skill(tmp_path / "repo", SLEEPER.format(marker=str(marker)), next_doc=False), env)
    assert eventually(marker.exists, 60), run.proc.poll()
    run.postmasters_at_kill = run.postmasters()
    if watchdog_too:
        watchdogs = [pid for pid, command in processes_with(run.marker) if "fenceproof.leftovers" in command]
        assert len(watchdogs) == 1
        os.kill(watchdogs[0], signal.SIGKILL)
        assert eventually(lambda: not alive(watchdogs[0]))
    run.proc.kill()
    run.proc.wait(timeout=10)
    return run


@pytest.mark.parametrize("source", ["local", "env"])
def test_killed_run_leaves_nothing_for_long(
    tmp_path: Path, source: str, request: pytest.FixtureRequest
) -> None:
    """R4: after kill -9 the workers die with their parents and the run's watchdog removes the cluster, the
    scratch folders and, on a DATABASE_URL server, the run's databases."""
    if source == "local":
        run = start_and_kill(tmp_path)
        assert len(run.postmasters_at_kill) == 1
        run.assert_nothing_left(run.postmasters_at_kill)
        return
    server = request.getfixturevalue("own_server")
    before = database_names(server)
    run = start_and_kill(tmp_path, {"DATABASE_URL": own_url(server)})
    run.assert_nothing_left()
    assert eventually(lambda: {n for n in database_names(server) if n.startswith(PREFIX)} <= before)


@pytest.fixture
def private_places() -> Iterator[dict[str, str]]:
    """Folders of their own for clusters and scratch folders: other runs on this machine sweep the usual ones,
    and would remove a killed run's leftovers before the run under test does."""
    made = []
    for parent in ("/dev/shm" if os.access("/dev/shm", os.W_OK) else "/tmp", "/tmp"):
        folder = Path(tempfile.mkdtemp(prefix="fenceproof-test-", dir=parent))
        folder.chmod(0o711)  # the postgres user reaches its cluster inside
        made.append(folder)
    yield {CLUSTER_PARENT_ENV: str(made[0]), "TMPDIR": str(made[1])}
    for folder in made:
        shutil.rmtree(folder, ignore_errors=True)


def test_next_run_removes_what_a_killed_run_left(tmp_path: Path, private_places: dict[str, str]) -> None:
    """R4: when the watchdog is killed too, the postmaster and the cluster stay, until the next run."""
    run = start_and_kill(tmp_path, private_places, watchdog_too=True)
    time.sleep(1)
    left = dirs_owned_by(run.proc.pid, private_places)
    assert any(CLUSTER_PREFIX in d.name for d in left)
    assert [alive(pid) for pid in run.postmasters_at_kill] == [True]
    make_skill(tmp_path / "next", {"asyncio-a.md": "# A\n\n```python\nprint(1)\n```\n"})
    after = Run(tmp_path / "next", private_places)
    assert after.finish() == 0, after.stdout + after.stderr
    for d in left:
        assert str(d) in after.stderr
        assert not d.exists()
    assert "removed what killed runs left" in after.stderr
    run.assert_nothing_left(run.postmasters_at_kill)
    after.assert_nothing_left()


def test_next_run_drops_the_databases_of_a_killed_run(
    tmp_path: Path, own_server: Server, private_places: dict[str, str]
) -> None:
    """R4 with DATABASE_URL: only fenceproof_<run id>_* databases whose run is gone, never anything else."""
    url = own_url(own_server)
    live = own_server.create_template()  # a database of a live run
    with psycopg.connect(superuser_conninfo(own_server), autocommit=True) as conn:
        conn.execute('CREATE DATABASE "fenceproof_keep_me"')  # not a name a run makes
    try:
        before = database_names(own_server)
        run = start_and_kill(tmp_path, {"DATABASE_URL": url, **private_places}, watchdog_too=True)
        assert eventually(lambda: not processes_with(run.marker))
        stale = {n for n in database_names(own_server) - before if n.startswith(PREFIX)}
        assert stale, "a killed run leaves its databases on a DATABASE_URL server"
        make_skill(tmp_path / "next", {"asyncio-a.md": "# A\n\n```python\nprint(1)\n```\n"})
        after = Run(tmp_path / "next", {"DATABASE_URL": url, **private_places})
        assert after.finish() == 0, after.stdout + after.stderr
        for name in stale:
            assert f"database {name}" in after.stderr
        names = database_names(own_server)
        assert not stale & names
        assert "fenceproof_keep_me" in names
        assert live in names
        run.assert_nothing_left()  # its scratch folder went too
    finally:
        with psycopg.connect(superuser_conninfo(own_server), autocommit=True) as conn:
            conn.execute('DROP DATABASE IF EXISTS "fenceproof_keep_me"')


def bad_files(root: Path) -> Path:
    """A skill with a dangling symlink, two symlinks to each other and a bad byte on line 5 beside a good rule."""
    make_skill(root, {"asyncio-a.md": "# A\n\n```python\nprint('a ran')\n```\n"})
    rules = root / "skills" / "python-backend" / "rules"
    (rules / "asyncio-dangling.md").symlink_to("nowhere.md")
    (rules / "loop-one.md").symlink_to("loop-two.md")
    (rules / "loop-two.md").symlink_to("loop-one.md")
    return rules


@pytest.mark.parametrize(
    ("name", "says"),
    [("asyncio-dangling.md", "a symbolic link to nothing"), ("loop-one.md", "symbolic links")],
    ids=["dangling", "loop"],
)
def test_broken_symlinks_are_named(tmp_path: Path, name: str, says: str) -> None:
    """R5: an error naming the link, not a traceback; the other links are left out so each is seen alone."""
    rules = bad_files(tmp_path)
    for other in ("asyncio-dangling.md", "loop-one.md", "loop-two.md"):
        if other != name and not (name == "loop-one.md" and other == "loop-two.md"):
            (rules / other).unlink()
    with pytest.raises(ConfigError) as info:
        load_corpus(tmp_path)
    assert info.value.path == f"skills/python-backend/rules/{name}" and info.value.line == 1
    assert says in str(info.value)


def test_a_bad_byte_is_named_at_its_line(tmp_path: Path) -> None:
    """R6: the line of the byte, not line 1."""
    make_skill(tmp_path)
    bad = tmp_path / "skills" / "python-backend" / "rules" / "asyncio-bad.md"
    bad.write_bytes(b"---\ntitle: x\n---\n# Bad\n\nthis byte \xff is not UTF-8\n")
    with pytest.raises(ConfigError) as info:
        load_corpus(tmp_path)
    assert (info.value.path, info.value.line) == ("skills/python-backend/rules/asyncio-bad.md", 6)
    assert "not UTF-8" in str(info.value)


def test_verifying_one_file_beside_broken_ones(tmp_path: Path) -> None:
    """R5/R6: broken files elsewhere in the skill neither crash nor fail the verification of another file."""
    rules = bad_files(tmp_path)
    (rules / "asyncio-bad.md").write_bytes(b"# Bad\n\nbyte \xff\n")
    run = subprocess.run(
        [sys.executable, "-m", "fenceproof.cli", "verify", str(rules / "asyncio-a.md")],
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    whole = subprocess.run(
        [sys.executable, "-m", "fenceproof.cli", "verify"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert whole.returncode == 2 and "Traceback" not in whole.stderr
    assert "error: skills/python-backend/rules/" in whole.stderr


@pytest.mark.parametrize(
    ("body", "line"),
    [
        ("# A\n\n<!--\n```python\nprint(1)\n```\n-->\n", 13),
        ("# A\n<div>\n```python\nprint(1)\n```\n</div>\n", 12),
        ("# A\n\nText:\n\n    ```python\n    print(1)\n    ```\n", 14),
    ],
    ids=["html-comment", "html-block", "indented"],
)
def test_no_fence_disappears_silently(tmp_path: Path, body: str, line: int) -> None:
    """A fence the parser does not see is an error at its line, not a block that is never run or shown."""
    make_skill(tmp_path, {"asyncio-a.md": body})
    with pytest.raises(ConfigError) as info:
        load_corpus(tmp_path)
    assert (info.value.path, info.value.line) == ("skills/python-backend/rules/asyncio-a.md", line)
    assert "not read as a code block" in info.value.message
