"""Run each grader's pytest in a fork of a process that has already imported pytest and the corpus libraries.

A fresh interpreter spends 2-3 s importing pytest, FastAPI, SQLAlchemy and asyncpg on a busy machine; a fork
takes milliseconds, and grading every solution of every task is dozens of pytest sessions. The zygote
(``python -m fenceproof.evals.zygote SOCK_FD PARENT_PID``) imports, then forks one child per grade; the child
is what ``python -m pytest ARGS`` in that folder would be: its own session and process group, the grade's cwd,
environment and sys.path, stdout and stderr into a log file, and its exit status written to a file.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any, NoReturn

PRELOAD = (
    "asyncio", "pytest", "_pytest.python", "_pytest.fixtures", "psycopg", "anyio", "httpx2", "pydantic",
    "fastapi", "fastapi.testclient", "starlette.testclient", "sqlalchemy", "sqlalchemy.orm",
    "sqlalchemy.ext.asyncio", "sqlalchemy.dialects.postgresql.asyncpg", "asyncpg", "aiohttp", "uvicorn",
)  # fmt: skip
MAX_MESSAGE = 1 << 20


def die_with_parent(parent_pid: int) -> None:
    """Linux: SIGKILL this process when its parent goes, so nothing outlives an interrupted grade."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent_pid:
        os._exit(1)


class ZygoteError(Exception):
    """The zygote did not start or stopped answering."""


class Zygote:
    """The parent's handle: ``start()`` a pytest run, then ``wait()`` for it. Safe to share between threads."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._sock = ours
        self._lock = threading.Lock()
        self._log = tempfile.NamedTemporaryFile(prefix="fenceproof-zygote-", suffix=".log")  # noqa: SIM115
        try:
            self._proc = subprocess.Popen(
                [
                    sys.executable,
                    "-P",
                    "-m",
                    "fenceproof.evals.zygote",
                    str(theirs.fileno()),
                    str(os.getpid()),
                ],
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                pass_fds=(theirs.fileno(),),
                start_new_session=True,
            )
        finally:
            theirs.close()
        self._sock.settimeout(120)
        try:
            if self._ask({"op": "ping"}).get("type") != "ready":
                raise ZygoteError(f"the zygote did not start: {self._log_tail()}")
        except BaseException:
            self.close()
            raise
        self._sock.settimeout(30)

    def start(self, cwd: Path, env: dict[str, str], args: list[str], log: Path, status: Path) -> int:
        """Fork ``pytest ARGS`` in ``cwd`` with ``env``; returns the child's pid (its process group too)."""
        request = {"op": "spawn", "cwd": str(cwd), "env": env, "args": args, "log": str(log)}
        return int(self._ask({**request, "status": str(status)})["pid"])

    @staticmethod
    def wait(pid: int, status: Path, timeout: float) -> int | None:
        """The run's exit code; None when it ran out of time (the caller kills the group)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if status.is_file() and status.read_text().strip():
                _wait_gone(pid)
                return int(status.read_text())
            try:
                os.kill(pid, 0)
            except ProcessLookupError:  # died without writing its status (a crash, a kill)
                return int(status.read_text()) if status.is_file() and status.read_text().strip() else 70
            time.sleep(0.02)
        return None

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            try:
                self._sock.send(json.dumps(request).encode())
                reply = self._sock.recv(MAX_MESSAGE)
            except OSError as exc:
                raise ZygoteError(f"the zygote stopped answering ({exc}): {self._log_tail()}") from None
        if not reply:
            raise ZygoteError(f"the zygote exited: {self._log_tail()}")
        answer: dict[str, Any] = json.loads(reply)
        return answer

    def _log_tail(self) -> str:
        return Path(self._log.name).read_text(errors="replace")[-1500:] or "(no output)"

    def close(self) -> None:
        self._sock.close()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._log.close()

    def __enter__(self) -> Zygote:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _wait_gone(pid: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.01)


def _child(request: dict[str, Any], zygote_pid: int) -> NoReturn:
    code = 70
    try:
        os.setsid()
        die_with_parent(zygote_pid)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the grader's own subprocesses are reaped normally
        fd = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.path[:0] = [p for p in request["env"].get("PYTHONPATH", "").split(os.pathsep) if p]
        sys.dont_write_bytecode = True
        sys.argv = ["pytest", *request["args"]]
        import pytest

        code = int(pytest.main(request["args"]))
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:  # noqa: B036 (nothing may escape a forked child)
        traceback.print_exc()
        sys.stderr.flush()
    finally:
        Path(request["status"]).write_text(str(code))
        os._exit(code)


def main(argv: list[str]) -> NoReturn:
    sock = socket.socket(fileno=int(argv[0]))
    die_with_parent(int(argv[1]))
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception as exc:  # the grader imports it itself, and sees why
            print(f"zygote: not preloading {name}: {exc!r}", file=sys.stderr)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel: no zombies
    gc.collect()
    gc.freeze()
    me = os.getpid()
    while True:
        try:
            data = sock.recv(MAX_MESSAGE)
        except OSError:
            break
        if not data:
            break
        request = json.loads(data)
        if request["op"] == "spawn":
            pid = os.fork()
            if pid == 0:
                sock.close()
                _child(request, me)
            reply: dict[str, Any] = {"pid": pid}
        else:
            reply = {"type": "ready"}
        sock.send(json.dumps(reply).encode())
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
