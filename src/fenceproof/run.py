"""Run one Markdown document's blocks in a worker process against a fresh database of its own.

The parent (this module) creates the database, starts ``python -m fenceproof.worker`` in its own process group
and scratch directory, sends it one block at a time and waits for each answer no longer than the block's
timeout. After the last block it lists the connections still open on the database (leaks), then kills the
worker's process group, drops the database and removes the scratch directory, whatever happened.
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
from fenceproof.forkserver import Forkserver
from fenceproof.models import Block, RunRecord
from fenceproof.postgres import Server

READY_TIMEOUT_S = 60.0  # interpreter start plus imports (SQLAlchemy when counting queries), on a busy machine
LEAK_SETTLE_S = 0.3  # a just-closed connection's backend can linger in pg_stat_activity for a moment


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
        self, pid: int, commands_fd: int, results_fd: int, log: Path, reap: Callable[[], int | None]
    ):
        self.pid = pid
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
        self.end()
        code = self._returncode
        if code is None:
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

    def end(self) -> None:
        """Kill its whole process group (a dead worker keeps its exit status) and reap it. Idempotent."""
        if self._ended:
            return
        self._ended = True
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self._returncode = self._reap()
        finally:
            os.close(self._commands)
            os.close(self._results)


def _start_worker(
    scratch: Path, log: Path, env: dict[str, str], flags: list[str], forkserver: Forkserver | None
) -> _Worker:
    commands_r, commands_w = os.pipe()
    results_r, results_w = os.pipe()
    log_fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    ours = (commands_w, results_r)
    try:
        if forkserver is not None:
            pid = forkserver.spawn(scratch, env, flags, (commands_r, results_w, log_fd))
            reap: Callable[[], int | None] = functools.partial(forkserver.wait, pid)
        else:
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
            pid, reap = proc.pid, proc.wait
    except BaseException:
        for fd in ours:
            os.close(fd)
        raise
    finally:
        for fd in (commands_r, results_w, log_fd):
            os.close(fd)  # only the worker holds these: its death is our end-of-file
    return _Worker(pid, commands_w, results_r, log, reap)


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
    return sorted(f for f in flags if f)


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
    root = Path(tempfile.mkdtemp(prefix="fenceproof-doc-"))
    worker: _Worker | None = None
    db: str | None = None
    try:
        scratch = root / "work"
        scratch.mkdir()
        db = server.new_name()
        env = {**os.environ, "DATABASE_URL": server.async_url(db), "UPSTREAM_URL": upstream_url}
        # Start the worker first: its interpreter starts and imports while the database is being cloned.
        worker = _start_worker(scratch, root / "worker.log", env, _worker_flags(blocks), forkserver)
        server.create_database(template, name=db)
        try:
            ready = worker.receive(READY_TIMEOUT_S)
        except _WorkerGone:
            ready = None
        if ready is None:
            raise RuntimeError(f"the worker did not start: {worker.death()}")
        setup_s = time.perf_counter() - t0
        seen: dict[
            tuple[int, float], int
        ] = {}  # (pid, backend_start) -> the block after which it was first open
        for i, (block, command) in enumerate(zip(blocks, commands, strict=True)):
            records[block.line] = _run_one(worker, block, command, default_timeout)
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
        finally:
            try:
                if db is not None and db in server.created:
                    server.drop_database(db)
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
