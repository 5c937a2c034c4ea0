"""The process that runs one Markdown document's blocks.

``python -m fenceproof.worker COMMANDS_FD RESULT_FD PARENT_PID [queries] [sql] [memory=MiB]`` (or forked by
``fenceproof.forkserver``): ``queries`` counts SQL statements run through SQLAlchemy per block, ``sql`` imports
psycopg up front for ``sql`` blocks, ``memory`` caps the worker's address space.

It reads one JSON command per line on COMMANDS_FD (``{"line", "lang", "rel", "file", "code"}``, ``lang`` one
of python, sql, file) and answers each with one JSON line on RESULT_FD: the facts about that block (see
``fenceproof.run.RunRecord``). All blocks share one namespace that is ``__main__`` and one event loop; line
numbers in tracebacks are Markdown lines. The parent enforces timeouts and ends this process; it also exits by
itself when COMMANDS_FD closes.
"""

from __future__ import annotations

import ast
import asyncio
import builtins
import contextlib
import faulthandler
import gc
import importlib
import inspect
import io
import json
import linecache
import os
import sys
import time
import traceback
import types
import warnings
from pathlib import Path
from typing import Any, NoReturn

from fenceproof.procs import become_subreaper, die_with_parent, keep

STDOUT_LIMIT = 4096
TRACEBACK_LIMIT = 6000


def qualname(cls: type) -> str:
    """``sqlalchemy.exc.MissingGreenlet``; builtins stay bare (``TypeError``)."""
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def mro_names(cls: type) -> list[str]:
    return [qualname(c) for c in cls.__mro__ if c is not object]


def _clip(text: str, limit: int, keep: str = "head") -> str:
    if len(text) <= limit:
        return text
    cut = len(text) - limit
    if keep == "head":
        return f"{text[:limit]}\n... [{cut} more characters]"
    return f"[{cut} characters before] ...\n{text[-limit:]}"


def _safe_str(value: object) -> str:
    try:
        return str(value)
    except Exception:  # a broken __str__ must not lose the record
        return f"<unprintable {type(value).__name__}>"


class DocumentRunner:
    """One document's namespace, event loop, scratch files and query counter."""

    def __init__(self, count_queries: bool, sql_blocks: bool) -> None:
        self.module = types.ModuleType("__main__")
        self.module.__dict__["__builtins__"] = builtins
        sys.modules["__main__"] = self.module  # dataclasses, pydantic and pickle look classes up here
        self.scratch = Path.cwd()
        sys.path.insert(0, str(self.scratch))
        sys.argv = [str(self.scratch / "__main__.py")]  # a block parsing arguments sees none
        self.runner = asyncio.Runner()
        self.files: dict[
            str, tuple[str, int]
        ] = {}  # written file -> (Markdown path, line of its first code line)
        self.queries: int | None = None
        if count_queries:
            from sqlalchemy import event
            from sqlalchemy.engine import Engine

            # On the class, so every engine counts: created in any block, sync or the one inside an AsyncEngine.
            event.listen(Engine, "before_cursor_execute", self._count)
            self.queries = 0
        if sql_blocks:
            import psycopg  # noqa: F401 (imported now, while the parent is still creating the database)
        self.sql_conninfo = os.environ.get("DATABASE_URL", "").replace(
            "postgresql+asyncpg://", "postgresql://", 1
        )

    def _count(self, *args: Any) -> None:
        if self.queries is not None:
            self.queries += 1

    def run(self, cmd: dict[str, Any]) -> dict[str, Any]:
        rel, first = cmd["rel"], cmd["line"] + 1
        record: dict[str, Any] = {
            "type": "result",
            "line": cmd["line"],
            "status": "ok",
            "exc_type": None,
            "exc_mro": [],
            "exc_text": None,
            "where": None,
            "traceback": None,
            "warnings": [],
            "queries": None,
        }
        out = io.StringIO()
        started = time.time()
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(out):
            warnings.simplefilter("always")
            if self.queries is not None:
                self.queries = 0
            try:
                if cmd["lang"] == "sql":
                    self._run_sql(cmd["code"])
                elif cmd["lang"] == "file":
                    self._write_file(cmd["file"], cmd["code"], rel, first)
                else:
                    self._run_python(cmd["code"], rel, first)
            except BaseException as exc:  # noqa: B036 (SystemExit and KeyboardInterrupt from a block are facts too)
                record.update(self._describe(exc, cmd, first))
            finally:
                if self.queries is not None and cmd["lang"] != "sql":
                    record["queries"] = self.queries
                record["duration_s"] = time.perf_counter() - t0
                # Objects this block dropped in reference cycles (an unclosed transport, say) are collected now,
                # so their ResourceWarnings belong to this block and not to whichever block runs next.
                gc.collect()
        record["started"] = started
        record["finished"] = time.time()
        record["stdout"] = _clip(out.getvalue(), STDOUT_LIMIT)
        record["warnings"] = [self._warning(w) for w in caught]
        return record

    def _run_python(self, code: str, rel: str, first: int) -> None:
        source = "\n" * (first - 1) + code
        linecache.cache[rel] = (len(source), None, source.splitlines(keepends=True), rel)
        compiled = compile(source, rel, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
        if compiled.co_flags & inspect.CO_COROUTINE:
            self.runner.run(eval(compiled, self.module.__dict__))  # noqa: S307 (running the block is the point)
        else:
            exec(compiled, self.module.__dict__)  # noqa: S102

    def _write_file(self, name: str, code: str, rel: str, first: int) -> None:
        target = (self.scratch / name).resolve()
        if not target.is_relative_to(self.scratch.resolve()):
            raise ValueError(f"file={name!r} points outside the scratch directory")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(code, encoding="utf-8")
        self.files[str(target)] = (rel, first)
        importlib.invalidate_caches()

    def _run_sql(self, code: str) -> None:
        import psycopg

        with psycopg.connect(self.sql_conninfo, autocommit=True) as conn:
            conn.execute(code.encode())  # bytes: a literal query, '%' needs no escaping

    def _location(self, filename: str, lineno: int) -> str:
        """``path:line``, with lines of written files mapped back to their Markdown lines."""
        if filename in self.files:
            md, first = self.files[filename]
            return f"{md}:{first + lineno - 1}"
        return f"{filename}:{lineno}"

    def _where(self, filename: str, lineno: int | None, rel: str) -> str | None:
        """The location if it lies in the document (a block, or a file written from one), else None."""
        if lineno is None or (filename != rel and filename not in self.files):
            return None
        return self._location(filename, lineno)

    def _describe(self, exc: BaseException, cmd: dict[str, Any], first: int) -> dict[str, Any]:
        rel = cmd["rel"]
        where = None
        if isinstance(exc, SyntaxError) and exc.filename:
            where = self._where(exc.filename, exc.lineno, rel)
        tb = exc.__traceback__
        while tb is not None:
            found = self._where(tb.tb_frame.f_code.co_filename, tb.tb_lineno, rel)
            where = found or where
            tb = tb.tb_next
        position = getattr(getattr(exc, "diag", None), "statement_position", None)
        if cmd["lang"] == "sql":
            offset = cmd["code"][: int(position) - 1].count("\n") if position else 0
            where = f"{rel}:{first + offset}"
        text = "".join(traceback.format_exception(exc))
        return {
            "status": "raised",
            "exc_type": qualname(type(exc)),
            "exc_mro": mro_names(type(exc)),
            "exc_text": _safe_str(exc),
            "where": where,
            "traceback": _clip(text, TRACEBACK_LIMIT, keep="tail"),
        }

    def _warning(self, w: warnings.WarningMessage) -> dict[str, Any]:
        category: type = w.category
        return {
            "category": qualname(category),
            "category_mro": mro_names(category),
            "message": _safe_str(w.message),
            "where": self._location(w.filename, w.lineno),
        }


def _send(fd: int, message: dict[str, Any]) -> None:
    data = (json.dumps(message, default=_safe_str) + "\n").encode()
    while data:
        data = data[os.write(fd, data) :]


def serve(commands_fd: int, result_fd: int, flags: list[str]) -> NoReturn:
    """Answer commands until they end; cwd, environment and stdout/stderr are already the document's."""
    for fd in (commands_fd, result_fd):
        os.set_inheritable(fd, False)  # a block's subprocess must not hold the parent's end-of-file open
    # What a block starts stays below this process even when it double-forks or calls setsid(), so the parent
    # can end all of it with the worker (fenceproof.procs.kill_tree).
    become_subreaper()
    limit_memory(memory_limit(flags))
    faulthandler.enable()  # a segfault leaves a Python traceback in the log the parent shows
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)  # input() in a block reads nothing
    os.close(null)
    sys.stdin = open(0, closefd=False)  # noqa: SIM115
    commands = os.fdopen(commands_fd, encoding="utf-8")
    doc = DocumentRunner(count_queries="queries" in flags, sql_blocks="sql" in flags)
    _send(result_fd, {"type": "ready", "pid": os.getpid()})
    for line in commands:
        _send(result_fd, doc.run(json.loads(line)))
    os._exit(0)  # no atexit, no loop shutdown: the parent has read what it needs


def memory_limit(flags: list[str]) -> int | None:
    """Bytes of address space a worker may use: the ``memory=N`` flag (MiB), else none."""
    for flag in flags:
        if flag.startswith("memory="):
            return int(flag.split("=", 1)[1]) << 20
    return None


def limit_memory(limit: int | None) -> None:
    """Cap this process's address space (and its children's): an unbounded allocation raises MemoryError."""
    if limit is None:
        return
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def main(argv: list[str]) -> None:
    """``python -m fenceproof.worker COMMANDS_FD RESULT_FD PARENT_PID [queries] [sql] [memory=MiB]``.

    This process stays as the worker's keeper (as a forked worker's is): a subreaper that only waits, so what a
    block leaves behind, even as a daemon, is ended when the worker ends.
    """
    die_with_parent(int(argv[2]))
    become_subreaper()
    worker = os.fork()
    if worker == 0:
        die_with_parent(int(os.getppid()))
        serve(int(argv[0]), int(argv[1]), argv[3:])
    for fd in (int(argv[0]), int(argv[1])):
        os.close(fd)  # only the worker holds them: its death is the parent's end-of-file
    keep(worker)


if __name__ == "__main__":
    main(sys.argv[1:])
