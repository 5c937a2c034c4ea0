"""Start document workers by forking a process that has already imported the heavy libraries.

Importing SQLAlchemy, asyncpg, FastAPI and pydantic takes a second or more per fresh interpreter; a fork takes a
few milliseconds. The fork server (``python -m fenceproof.forkserver SOCK_FD PARENT_PID MODULE...``) imports the
modules once, never runs a block itself, and forks one child per document; each child is a worker exactly as
``python -m fenceproof.worker`` would be (own session and process group, the document's cwd and environment),
so documents still share nothing. Not seen by blocks: warnings emitted while those modules were imported.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn

from fenceproof.worker import die_with_parent, serve

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


class ForkserverError(Exception):
    """The fork server did not start or stopped answering."""


class Forkserver:
    """The parent's handle on a running fork server. Use as a context manager; safe to share between threads."""

    def __init__(self, preload: Sequence[str] = PRELOAD) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._sock = ours
        self._lock = threading.Lock()
        self._log = tempfile.NamedTemporaryFile(prefix="fenceproof-forkserver-", suffix=".log")  # noqa: SIM115
        try:
            self._proc = subprocess.Popen(
                [
                    sys.executable,
                    "-P",
                    "-m",
                    "fenceproof.forkserver",
                    str(theirs.fileno()),
                    str(os.getpid()),
                    *preload,
                ],
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
            self.close()
            raise
        self._sock.settimeout(30)

    def spawn(self, cwd: Path, env: dict[str, str], flags: list[str], fds: tuple[int, int, int]) -> int:
        """Fork a worker with (commands, results, log) as its fds; return its pid."""
        reply = self._ask({"op": "spawn", "cwd": str(cwd), "env": env, "flags": flags}, fds)
        return int(reply["pid"])

    def wait(self, pid: int) -> int | None:
        """Reap a worker this server forked (after it was killed): its exit code, or -signal."""
        returncode = self._ask({"op": "wait", "pid": pid})["returncode"]
        return None if returncode is None else int(returncode)

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
        return Path(self._log.name).read_text(errors="replace")[-1500:] or "(no output)"

    def close(self) -> None:
        """Stop the fork server (it exits when its socket closes); its workers are ended by their runs."""
        self._sock.close()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._log.close()

    def __enter__(self) -> Forkserver:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _fork_worker(sock: socket.socket, request: dict[str, Any], fds: list[int]) -> int:
    commands_fd, result_fd, log_fd = fds
    server_pid = os.getpid()
    pid = os.fork()
    if pid:
        for fd in fds:
            os.close(fd)
        return pid
    try:  # the child: become the document's worker
        sock.close()
        os.setsid()
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(log_fd)
        die_with_parent(server_pid)
        serve(commands_fd, result_fd, request["flags"])
    except BaseException:  # noqa: B036 (nothing may escape a forked child)
        traceback.print_exc()
    finally:
        os._exit(70)


def main(argv: list[str]) -> NoReturn:
    sock = socket.socket(fileno=int(argv[0]))
    die_with_parent(int(argv[1]))
    for name in argv[2:]:
        try:
            importlib.import_module(name)
        except Exception as exc:  # not installed or broken: the document imports it itself, and sees why
            print(f"fork server: not preloading {name}: {exc!r}", file=sys.stderr)
    # What the libraries allocated at import is never garbage: moving it out of the collector's reach keeps each
    # worker's per-block gc.collect() cheap (and avoids copying those pages after fork).
    gc.collect()
    gc.freeze()
    sock.send(json.dumps({"type": "ready"}).encode())
    while True:
        try:
            data, fds, _flags, _addr = socket.recv_fds(sock, MAX_REQUEST, 3)
        except OSError:
            break
        if not data:
            break  # the parent closed its end
        request = json.loads(data)
        if request["op"] == "spawn":
            reply: dict[str, Any] = {"pid": _fork_worker(sock, request, fds)}
        else:
            try:
                _, status = os.waitpid(int(request["pid"]), 0)
                reply = {"returncode": os.waitstatus_to_exitcode(status)}
            except ChildProcessError:
                reply = {"returncode": None}
        sock.send(json.dumps(reply).encode())
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
