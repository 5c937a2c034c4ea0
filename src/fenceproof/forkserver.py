"""Start document workers by forking a process that has already imported the heavy libraries.

Importing SQLAlchemy, asyncpg, FastAPI and pydantic takes a second or more per fresh interpreter; a fork takes a
few milliseconds. The fork server (``python -m fenceproof.forkserver SOCK_FD MODULE...``) imports the
modules once, never runs a block itself, and forks one keeper per document, which forks the document's worker:
a worker exactly as ``python -m fenceproof.worker`` would be (the document's cwd and environment; the keeper's
session and process group), so documents still share nothing. The keeper only waits: a block that kills its
worker's parent kills its keeper and its own worker, not the fork server with every other document's worker.
The server and each keeper are subreapers, so what a block starts as a daemon stays below them and is ended.
Not seen by blocks: warnings emitted while those modules were imported.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn

from fenceproof.procs import become_subreaper, children, die_with_parent, keep, kill_tree
from fenceproof.worker import serve

# Imported once by the fork server when installed; a missing or failing one is skipped.
PRELOAD = (
    "asyncio",
    "sqlalchemy",
    "sqlalchemy.orm",
    "sqlalchemy.ext.asyncio",
    "sqlalchemy.dialects.postgresql.asyncpg",
    "sqlalchemy.dialects.postgresql.psycopg",
    "asyncpg",
    "psycopg",
    "pydantic",
    "fastapi",
)
MAX_REQUEST = 1 << 20
READY_TIMEOUT_S = 120.0
ANSWER_TIMEOUT_S = 15.0  # a fork or a bounded wait; more means the server is stuck
SESSION_TIMEOUT_S = 5.0  # a forked child calls setsid() first thing
WAIT_TIMEOUT_S = 5.0  # reaping a SIGKILLed worker (a process in uninterruptible sleep dies late)


class ForkserverError(Exception):
    """The fork server did not start or stopped answering."""


class Forkserver:
    """The parent's handle on a running fork server. Use as a context manager; safe to share between threads.

    A fork server that died (a block can kill its worker's parent) is started again on the next ``spawn``; the
    workers it had forked died with it.
    """

    def __init__(self, preload: Sequence[str] = PRELOAD, answer_timeout_s: float = ANSWER_TIMEOUT_S) -> None:
        self._preload = tuple(preload)
        self._answer_timeout_s = answer_timeout_s
        self._lock = threading.RLock()
        self._born: dict[int, int] = {}  # worker pid -> generation of the fork server that forked it
        self._generation = 0
        self.restarts = 0
        self._closed = False
        self._start()

    def _start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._sock = ours
        self._generation += 1
        # Unnamed (O_TMPFILE): nothing is left on disk even when the run is killed.
        self._log = tempfile.TemporaryFile(prefix="fenceproof-forkserver-")  # noqa: SIM115
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-P", "-m", "fenceproof.forkserver", str(theirs.fileno()), *self._preload],
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                pass_fds=(theirs.fileno(),),
                start_new_session=True,  # deaf to the terminal's Ctrl-C; we stop it
            )
        finally:
            theirs.close()
        self._sock.settimeout(READY_TIMEOUT_S)
        try:
            if json.loads(self._sock.recv(MAX_REQUEST) or b"{}").get("type") != "ready":
                raise ForkserverError(f"the fork server did not start: {self._log_tail()}")
        except BaseException:
            self._stop()
            raise
        self._sock.settimeout(self._answer_timeout_s)

    def deaths(self) -> int:
        """How often the fork server died during the run (a block killed it), the last time included."""
        with self._lock:
            return self.restarts + (0 if self._closed or self._proc.poll() is None else 1)

    def spawn(
        self, cwd: Path, env: dict[str, str], flags: list[str], fds: tuple[int, int, int]
    ) -> tuple[int, int | None]:
        """Fork a worker with (commands, results, log) as its fds, below a keeper process of its own: return
        (keeper pid, worker pid or None if it is not known). Kill and wait for the keeper; it ends the worker.

        A dead fork server is started again once; ForkserverError if that fails too.
        """
        request = {"op": "spawn", "cwd": str(cwd), "env": env, "flags": flags}
        with self._lock:
            if self._closed:
                raise ForkserverError("the fork server is closed")
            try:
                reply = self._ask(request, fds)
            except ForkserverError:
                self._stop(kill=True)
                self.restarts += 1
                self._start()
                reply = self._ask(request, fds)
            pid = int(reply["pid"])
            self._born[pid] = self._generation
            return pid, reply.get("worker")

    def wait(self, pid: int) -> int | None:
        """Reap a worker this server forked (after it was killed): its exit code, or -signal.

        None when that is unknown: its fork server has died since (and the worker with it), or it did not end
        in time.
        """
        with self._lock:
            if self._born.pop(pid, None) != self._generation or self._closed:
                return None
            try:
                returncode = self._ask({"op": "wait", "pid": pid})["returncode"]
            except ForkserverError:
                return None
        return None if returncode is None else int(returncode)

    def forked_alive(self, pid: int) -> bool:
        """Whether the fork server that forked worker ``pid`` still answers (one that was just sent SIGKILL
        never does, even before it is gone)."""
        with self._lock:
            if self._born.get(pid) != self._generation or self._closed:
                return False
            try:
                self._ask({"op": "ping"})
            except ForkserverError:
                return False
            return True

    def _ask(self, request: dict[str, Any], fds: Sequence[int] = ()) -> dict[str, Any]:
        data = json.dumps(request).encode()
        if len(data) > MAX_REQUEST:
            raise ForkserverError("request too large for the fork server")
        with self._lock:
            try:
                socket.send_fds(self._sock, [data], list(fds))
                reply = self._sock.recv(MAX_REQUEST)
            except OSError as exc:
                raise ForkserverError(
                    f"the fork server stopped answering ({exc}): {self._log_tail()}"
                ) from None
        if not reply:
            raise ForkserverError(f"the fork server exited: {self._log_tail()}")
        answer: dict[str, Any] = json.loads(reply)
        return answer

    def _log_tail(self) -> str:
        try:
            size = os.fstat(self._log.fileno()).st_size
            text = os.pread(self._log.fileno(), 1500, max(0, size - 1500)).decode(errors="replace")
        except (OSError, ValueError):
            text = ""
        return text or "(no output)"

    def _stop(self, kill: bool = False) -> None:
        """Stop this generation: it exits (ending the workers it still has) when its socket closes. One that
        stopped answering is killed (its workers die with it)."""
        self._sock.close()
        try:
            self._proc.wait(timeout=0 if kill else 10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait()
        self._log.close()

    def close(self) -> None:
        """Stop the fork server. Safe to call more than once."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._stop()

    def __enter__(self) -> Forkserver:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _fork_worker(sock: socket.socket, request: dict[str, Any], fds: list[int]) -> tuple[int, int | None]:
    """Fork a keeper, which forks the worker. Return (keeper pid, worker pid) once the keeper leads a session of
    its own (so killing its group reaches both) and the worker exists; bounded in time.

    A block that kills its worker's parent kills only its keeper (and so its own worker), not this server and
    the other documents' workers.
    """
    server_pid = os.getpid()
    ready_r, ready_w = os.pipe()
    keeper = os.fork()
    if keeper:
        os.close(ready_w)
        for fd in fds:
            os.close(fd)
        worker = None
        try:
            if select.select([ready_r], [], [], SESSION_TIMEOUT_S)[0]:
                with contextlib.suppress(OSError, ValueError):
                    worker = int(os.read(ready_r, 32) or b"x")
        finally:
            os.close(ready_r)
        return keeper, worker
    try:  # the keeper
        sock.close()
        os.close(ready_r)
        os.setsid()
        die_with_parent(server_pid)
        become_subreaper()
        worker = os.fork()
        if worker == 0:
            os.close(ready_w)
            _become_worker(request, fds, keeper=os.getppid())
        for fd in fds:
            os.close(fd)
        os.write(ready_w, str(worker).encode())
        os.close(ready_w)
        keep(worker)
    except BaseException:  # noqa: B036 (nothing may escape a forked child)
        traceback.print_exc()
    finally:
        os._exit(70)


def _become_worker(request: dict[str, Any], fds: list[int], keeper: int) -> NoReturn:
    commands_fd, result_fd, log_fd = fds
    try:
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(log_fd)
        die_with_parent(keeper)
        serve(commands_fd, result_fd, request["flags"])
    except BaseException:  # noqa: B036 (nothing may escape a forked child)
        traceback.print_exc()
    finally:
        os._exit(70)


def _wait(pid: int, workers: set[int]) -> int | None:
    """Kill and reap one worker, bounded in time: its exit code (-signal), or None."""
    workers.discard(pid)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + WAIT_TIMEOUT_S
    while True:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return None
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            return None
        time.sleep(0.005)


def _end_orphans(workers: set[int]) -> None:
    """Kill what dead workers left behind: it was re-parented to us (a subreaper). Reap what has ended."""
    for pid in children(os.getpid()):
        if pid in workers:
            continue
        kill_tree(pid)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def main(argv: list[str]) -> NoReturn:
    sock = socket.socket(fileno=int(argv[0]))
    become_subreaper()
    for name in argv[1:]:
        try:
            importlib.import_module(name)
        except Exception as exc:  # not installed or broken: the document imports it itself, and sees why
            print(f"fork server: not preloading {name}: {exc!r}", file=sys.stderr)
    # What the libraries allocated at import is never garbage: moving it out of the collector's reach keeps each
    # worker's per-block gc.collect() cheap (and avoids copying those pages after fork).
    gc.collect()
    gc.freeze()
    workers: set[int] = set()
    try:
        sock.send(json.dumps({"type": "ready"}).encode())
        while True:
            try:
                data, fds, _flags, _addr = socket.recv_fds(sock, MAX_REQUEST, 3)
            except OSError:
                break
            if not data:
                break  # the parent closed its end (or died)
            request = json.loads(data)
            if request["op"] == "spawn":
                pid, worker = _fork_worker(sock, request, fds)
                workers.add(pid)
                reply: dict[str, Any] = {"pid": pid, "worker": worker}
            elif request["op"] == "wait":
                reply = {"returncode": _wait(int(request["pid"]), workers)}
            else:
                reply = {"pong": True}
            if request["op"] != "ping":  # a ping comes after every block: keep it cheap
                _end_orphans(workers)
            sock.send(json.dumps(reply).encode())
    except OSError:
        pass  # the parent is gone
    finally:
        for pid in list(workers):
            kill_tree(pid)
        _end_orphans(set())
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
