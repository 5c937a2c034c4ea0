"""Run one Markdown document's blocks in a worker process against a fresh database of its own.

The parent (this module) creates the database, starts ``python -m fenceproof.worker`` in its own process group
and scratch directory, sends it one block at a time and waits for each answer no longer than the block's
timeout. After the last block it lists the connections still open on the database (leaks), then kills the
worker's process group, drops the database and removes the scratch directory, whatever happened.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fenceproof.models import Block
from fenceproof.postgres import Server

PYTHON_LANGS = ("python", "py")
READY_TIMEOUT_S = 60.0  # interpreter start plus imports (SQLAlchemy when counting queries), on a busy machine
LEAK_SETTLE_S = 0.3  # a just-closed connection's backend can linger in pg_stat_activity for a moment


@dataclass
class RunRecord:
    """Raw facts about one block; the prove stage decides what they mean."""

    line: int  # the block's opening-fence line
    status: str  # "ok" | "raised" | "timeout" | "not-run" | "error" (the engine failed to run it)
    exc_type: str | None = None  # "sqlalchemy.exc.MissingGreenlet"; builtins bare ("TypeError")
    exc_mro: list[str] = field(default_factory=list)  # qualified names of type(exc).__mro__, without object
    exc_text: str | None = None  # str(exc), or what went wrong for timeout / not-run / error
    where: str | None = None  # "rules/x.md:57": the deepest traceback frame inside the document
    warnings: list[dict[str, Any]] = field(default_factory=list)  # category, category_mro, message, where
    queries: int | None = None  # SQL statements run through SQLAlchemy (None when not counted)
    stdout: str = ""  # what the block printed, clipped to about 4 KB
    started: float = 0.0  # time.time() bounds
    finished: float = 0.0
    duration_s: float = 0.0
    traceback: str | None = None  # the formatted traceback when the block raised (tail, about 6 KB)


@dataclass
class DocumentRun:
    records: dict[int, RunRecord]  # by block line; one per block passed in
    leaks: list[dict[str, Any]]  # connections open after the last block: "line" (blamed block) + pg_stat info
    setup_s: float  # create the database + start the worker
    teardown_s: float  # leak check + stop the worker + drop the database


class _WorkerGone(Exception):
    pass


class _Worker:
    """The worker subprocess and the pipe its answers come back on."""

    def __init__(self, scratch: Path, log: Path, env: dict[str, str], flags: list[str]) -> None:
        read_fd, write_fd = os.pipe()
        self._fd = read_fd
        self._buffer = b""
        self.log = log
        argv = [sys.executable, "-m", "fenceproof.worker", str(write_fd), str(os.getpid())]
        try:
            with open(log, "wb") as out:
                self.proc = subprocess.Popen(
                    [*argv, *flags],
                    cwd=scratch,
                    env=env,
                    stdin=subprocess.PIPE,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    pass_fds=(write_fd,),
                    start_new_session=True,  # its own process group: killed as a whole, deaf to our Ctrl-C
                )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)  # only the worker holds the write end: its death is our end-of-file

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write((json.dumps(message) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            raise _WorkerGone from None

    def receive(self, timeout: float) -> dict[str, Any] | None:
        """The next message, or None if none came within ``timeout``; _WorkerGone if the worker died."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([self._fd], [], [], remaining)
            if ready:
                chunk = os.read(self._fd, 1 << 16)
                if not chunk:
                    raise _WorkerGone
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        message: dict[str, Any] = json.loads(line)
        return message

    def death(self) -> str:
        """How the worker ended, with the end of what it wrote to stderr."""
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return "the worker closed its result pipe but kept running"
        if code < 0:
            how = f"was killed by signal {signal.Signals(-code).name}"
        else:
            how = f"exited with code {code}"
        try:
            tail = self.log.read_text(errors="replace").strip()[-1500:]
        except OSError:
            tail = ""
        return f"the worker process {how}" + (f"; its output ended with:\n{tail}" if tail else "")

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        if self.proc.stdin is not None:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
        os.close(self._fd)


def _command(block: Block) -> dict[str, Any]:
    if block.lang == "sql":
        lang = "sql"
    elif block.lang in PYTHON_LANGS and block.mode in ("run", "file"):
        lang = "python"
    else:
        raise ValueError(
            f"{block.where}: run_document cannot execute a {block.lang!r} block in mode {block.mode!r}"
        )
    return {
        "line": block.line,
        "lang": lang,
        "mode": block.mode,
        "rel": block.rel,
        "file": block.attrs.get("file"),
        "code": block.code,
    }


def _worker_flags(blocks: list[Block]) -> list[str]:
    flags = []
    if any(b.attrs.get("expect", "").startswith("queries:") for b in blocks):
        flags.append("queries")
    if any(b.lang == "sql" for b in blocks):
        flags.append("sql")
    return flags


def run_document(
    blocks: list[Block],
    server: Server,
    template: str | None,
    upstream_url: str,
    default_timeout: float = 10.0,
) -> DocumentRun:
    """Execute ``blocks`` (one document's, in order, each once) and return what each did."""
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
        worker = _Worker(scratch, root / "worker.log", env, _worker_flags(blocks))
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
                worker.kill()
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
