"""Run one Markdown document's blocks in a worker process against a fresh database of its own.

The parent (this module) creates the database, starts ``python -m fenceproof.worker`` (or has the fork server
fork one) in its own session and scratch directory, sends it one block at a time and waits for each answer no
longer than the block's timeout. After each block it checks what the block did to the run itself (the engine's
connection terminated, the run's databases dropped, the worker's parent killed: the block fails, named). After
the last block it lists the connections still open on the database (leaks) and the processes the blocks left
running (they fail the block that started them), then kills the worker with everything below it or carrying its
environment marker, drops the database and removes the scratch directory, whatever happened.
"""

from __future__ import annotations

import functools
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fenceproof import kinds
from fenceproof.forkserver import Forkserver, ForkserverError
from fenceproof.leftovers import DOC_PREFIX
from fenceproof.models import Block, RunRecord
from fenceproof.postgres import Server
from fenceproof.procs import alive, descendants, kill_tree, killed, marked, process_info, write_owner

READY_TIMEOUT_S = 60.0  # interpreter start plus imports (SQLAlchemy when counting queries), on a busy machine
LEAK_SETTLE_S = 0.3  # a just-closed connection's backend can linger in pg_stat_activity for a moment
# Address space per worker: the preloaded libraries and a few threads take ~1 GB of it; a block allocating
# without bound gets MemoryError at this size instead of taking the machine's memory.
WORKER_MEMORY_MIB = int(os.environ.get("FENCEPROOF_WORKER_MEMORY_MIB", "4096"))
MARKER = "FENCEPROOF_WORKER"  # in each worker's environment: what carries it ends with the worker


@dataclass
class DocumentRun:
    records: dict[int, RunRecord]  # by block line; one per block passed in
    leaks: list[dict[str, Any]]  # connections open after the last block: "line" (blamed block) + pg_stat info
    setup_s: float  # create the database + start the worker
    teardown_s: float  # leak check + stop the worker + drop the database


class _WorkerGone(Exception):
    pass


class _Worker:
    """A running worker: the pipe we send commands on, the pipe its answers come back on."""

    def __init__(
        self,
        pid: int,
        commands_fd: int,
        results_fd: int,
        log: Path,
        reap: Callable[[], int | None],
        marker: str | None = None,
    ):
        self.pid = pid
        self.marker = marker  # NAME=value in the environment of the worker and of whatever its blocks start
        self.forked_by: Forkserver | None = None
        self.worker_pid: int | None = pid  # forked: the worker below the keeper process ``pid``
        self._commands = commands_fd
        self._results = results_fd
        self._buffer = b""
        self._reap = reap
        self._returncode: int | None = None
        self._ended = False
        self.log = log

    def send(self, message: dict[str, Any]) -> None:
        data = (json.dumps(message) + "\n").encode()
        try:
            while data:
                data = data[os.write(self._commands, data) :]
        except BrokenPipeError:
            raise _WorkerGone from None

    def receive(self, timeout: float) -> dict[str, Any] | None:
        """The next message, or None if none came within ``timeout``; _WorkerGone if the worker died."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([self._results], [], [], remaining)
            if ready:
                chunk = os.read(self._results, 1 << 16)
                if not chunk:
                    raise _WorkerGone
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        message: dict[str, Any] = json.loads(line)
        return message

    def death(self) -> str:
        """How the worker ended, with the end of what it wrote to stdout/stderr."""
        orphaned = self.forked_by is not None and not self.forked_by.forked_alive(self.pid)
        deadline = time.monotonic() + 2  # the worker's keeper exits by itself, as the worker did
        while alive(self.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        self.end()
        code = self._returncode
        if orphaned:
            how = "was killed with the fork server (its parent's parent)"
        elif code is None:
            how = "ended"
        elif code < 0:
            how = f"was killed by signal {signal.Signals(-code).name}"
        else:
            how = f"exited with code {code}"
        try:
            tail = self.log.read_text(errors="replace").strip()[-1500:]
        except OSError:
            tail = ""
        return f"the worker process {how}" + (f"; its output ended with:\n{tail}" if tail else "")

    def parent_died(self) -> bool:
        """After an answer: whether the worker's parent (its keeper) or their fork server died (or is dying)."""
        if self._ended:
            return False
        return killed(self.pid) or (self.forked_by is not None and not self.forked_by.forked_alive(self.pid))

    def leftovers(self) -> list[tuple[int, float, str]]:
        """Processes still running that the worker's blocks started: (pid, start as epoch seconds, command)."""
        pids = {*descendants(self.pid), *(marked(self.marker) if self.marker else [])} - {
            self.pid,
            self.worker_pid,
        }
        return sorted(info for pid in pids if alive(pid) and (info := process_info(pid)) is not None)

    def end(self) -> None:
        """Kill it with everything it started (a dead worker keeps its exit status until reaped), reap it.

        Idempotent; never raises for a worker that is already gone or a fork server that died.
        """
        if self._ended:
            return
        self._ended = True
        try:
            kill_tree(self.pid, self.marker)
        finally:
            os.close(self._commands)  # a worker that somehow survived reads end-of-file and exits
            os.close(self._results)
            try:
                self._returncode = self._reap()
            except (ForkserverError, OSError, subprocess.TimeoutExpired):
                self._returncode = None


def _start_worker(
    scratch: Path, log: Path, env: dict[str, str], flags: list[str], forkserver: Forkserver | None
) -> _Worker:
    commands_r, commands_w = os.pipe()
    results_r, results_w = os.pipe()
    log_fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    ours = (commands_w, results_r)
    try:
        pid = worker_pid = None
        if forkserver is not None:
            try:
                pid, worker_pid = forkserver.spawn(scratch, env, flags, (commands_r, results_w, log_fd))
                reap: Callable[[], int | None] = functools.partial(forkserver.wait, pid)
            except ForkserverError:
                pid = None  # it died and could not be started again: start this worker fresh
        if pid is None:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-P",
                    "-m",
                    "fenceproof.worker",
                    str(commands_r),
                    str(results_w),
                    str(os.getpid()),
                ]
                + flags,
                cwd=scratch,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_fd,
                stderr=log_fd,
                pass_fds=(commands_r, results_w),
                start_new_session=True,  # its own process group: killed as a whole, deaf to our Ctrl-C
            )
            pid = worker_pid = proc.pid
            reap = functools.partial(proc.wait, timeout=10)
    except BaseException:
        for fd in ours:
            os.close(fd)
        raise
    finally:
        for fd in (commands_r, results_w, log_fd):
            os.close(fd)  # only the worker holds these: its death is our end-of-file
    worker = _Worker(pid, commands_w, results_r, log, reap, f"{MARKER}={env[MARKER]}")
    worker.worker_pid = worker_pid
    if forkserver is not None and forkserver.forked_alive(pid):
        worker.forked_by = forkserver
    return worker


def _command(block: Block) -> dict[str, Any]:
    if block.mode == "file":  # any language: alembic.ini, a .mako template, a module
        lang = "file"
    elif block.kind in ("python", "sql") and block.mode == "run":
        lang = block.kind
    else:
        raise ValueError(
            f"{block.where}: run_document cannot execute a {block.lang!r} block in mode {block.mode!r}"
        )
    return {
        "line": block.line,
        "lang": lang,
        "rel": block.rel,
        "file": block.attrs.get("file"),
        "code": block.code,
    }


def _worker_flags(blocks: list[Block]) -> list[str]:
    flags = {kinds.expect_kind(b.expect.kind).worker_flag for b in blocks if b.expect}
    if any(b.kind == "sql" and b.mode == "run" for b in blocks):
        flags.add("sql")
    return [f"memory={WORKER_MEMORY_MIB}", *sorted(f for f in flags if f)]


def run_document(
    blocks: list[Block],
    server: Server,
    template: str | None,
    upstream_url: str,
    default_timeout: float = 10.0,
    forkserver: Forkserver | None = None,
) -> DocumentRun:
    """Execute ``blocks`` (one document's, in order, each once) and return what each did.

    With a ``forkserver`` the worker is forked from it (libraries already imported) instead of started fresh.
    """
    commands = [_command(b) for b in blocks]
    records: dict[int, RunRecord] = {}
    leaks: list[dict[str, Any]] = []
    if not blocks:
        return DocumentRun(records, leaks, 0.0, 0.0)
    t0 = time.perf_counter()
    setup_s = 0.0
    root = Path(tempfile.mkdtemp(prefix=DOC_PREFIX))
    worker: _Worker | None = None
    db: str | None = None
    try:
        scratch = root / "work"
        scratch.mkdir()
        db = server.new_name()
        env = {
            **os.environ,
            "DATABASE_URL": server.async_url(db),
            "UPSTREAM_URL": upstream_url,
            MARKER: f"{server.run_id}-{db}",
        }
        write_owner(root)
        # Start the worker first: its interpreter starts and imports while the database is being cloned.
        worker = _start_worker(scratch, root / "worker.log", env, _worker_flags(blocks), forkserver)
        server.damage()  # a run's template that a block dropped is made again here
        server.create_database(template, name=db)
        try:
            ready = worker.receive(READY_TIMEOUT_S)
        except _WorkerGone:
            ready = None
        if ready is None:
            raise RuntimeError(f"the worker did not start: {worker.death()}")
        worker.worker_pid = ready.get("pid", worker.worker_pid)  # below its keeper, which is ``worker.pid``
        setup_s = time.perf_counter() - t0
        seen: dict[
            tuple[int, float], int
        ] = {}  # (pid, backend_start) -> the block after which it was first open
        for i, (block, command) in enumerate(zip(blocks, commands, strict=True)):
            records[block.line] = _run_one(worker, block, command, default_timeout)
            problems = server.damage()  # what the block did to the run itself: named, and the document ends
            if worker.parent_died():
                problems.append("killed its worker's parent process")
            if problems:
                record = records[block.line]
                record.status = "error"
                record.exc_text = f"the block broke the engine's run: {'; '.join(problems)}" + (
                    f" (and raised {record.exc_type}: {record.exc_text})" if record.exc_type else ""
                )
            if records[block.line].status not in ("ok", "raised"):
                for later in blocks[i + 1 :]:
                    records[later.line] = RunRecord(
                        later.line,
                        "not-run",
                        exc_text=f"not run: the block at line {block.line} ended the worker",
                    )
                break
            for conn in server.connections(db):
                seen.setdefault((conn["pid"], conn["backend_start"]), block.line)
        else:
            leaks = _leaks(server, db, seen, blocks[-1].line)
            _blame_processes(worker, [records[b.line] for b in blocks])
    except Exception as exc:  # the engine itself failed: every block not yet run gets that as its record
        for block in blocks:
            if block.line not in records:
                records[block.line] = RunRecord(
                    block.line, "error", exc_text=f"the engine could not run it: {exc}"
                )
    finally:
        t1 = time.perf_counter()
        if not setup_s:
            setup_s = t1 - t0
        try:
            if worker is not None:
                worker.end()
            if db is not None and db in server.created:
                try:
                    server.drop_database(db)
                except Exception:  # noqa: S110 (the server's close drops it, or reports why it cannot)
                    pass
        finally:
            shutil.rmtree(root, ignore_errors=True)
    return DocumentRun(records, leaks, setup_s, time.perf_counter() - t1)


def _run_one(worker: _Worker, block: Block, command: dict[str, Any], default_timeout: float) -> RunRecord:
    timeout = block.timeout if block.timeout is not None else default_timeout
    started = time.time()
    try:
        worker.send(command)
        message = worker.receive(timeout)
    except _WorkerGone:
        return RunRecord(
            block.line,
            "error",
            exc_text=f"{worker.death()}",
            started=started,
            finished=time.time(),
            duration_s=time.time() - started,
        )
    if message is None:
        finished = time.time()
        return RunRecord(
            block.line,
            "timeout",
            exc_text=f"the block did not finish within {timeout:g} s; its worker was killed",
            started=started,
            finished=finished,
            duration_s=finished - started,
        )
    message.pop("type", None)
    return RunRecord(**message)


def _blame_processes(worker: _Worker, records: list[RunRecord]) -> None:
    """Processes a document's blocks started and left running fail the block that started them."""
    own = process_info(worker.pid)
    notes: dict[int, list[str]] = {}
    for pid, started, command in worker.leftovers():
        # The block whose run covers the process's start (clock ticks: 10 ms), else the last one.
        owner = next((r for r in records if r.started - 0.05 <= started <= r.finished + 0.05), records[-1])
        what = "a fork of the worker" if own is not None and command == own[2] else command
        notes.setdefault(owner.line, []).append(f"pid {pid} ({what})")
    for record in records:
        if record.line in notes:
            record.status = "error"
            record.exc_text = (
                f"left {len(notes[record.line])} process(es) running at the end of the document: "
                f"{', '.join(notes[record.line])}; a block ends (or waits for) the processes it starts"
            )


def _leaks(
    server: Server, db: str, seen: dict[tuple[int, float], int], last_line: int
) -> list[dict[str, Any]]:
    """Connections still open on ``db`` once closing ones have had a moment to go, each blamed on a block."""
    deadline = time.monotonic() + LEAK_SETTLE_S
    open_now = server.connections(db)
    while open_now and time.monotonic() < deadline:
        time.sleep(0.02)
        open_now = server.connections(db)
    return [{"line": seen.get((c["pid"], c["backend_start"]), last_line), **c} for c in open_now]
