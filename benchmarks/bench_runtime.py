"""Where the runtime's time goes: cluster start, template, and per-document overhead.

    uv run python benchmarks/bench_runtime.py [--documents 10]

Per document (mean over N documents): create the database and start the worker (setup; the two overlap), run
the blocks, then leak check + stop the worker + drop the database (teardown). Each series runs with workers
started fresh (``python -m fenceproof.worker``) and forked from the fork server. "trivial" documents measure the
engine's own cost; "counting queries" makes the worker import SQLAlchemy before the first block; "importing"
documents import FastAPI and SQLAlchemy in their first block, as most corpus documents do.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from fenceproof.forkserver import PRELOAD, Forkserver
from fenceproof.models import Block
from fenceproof.postgres import open_server
from fenceproof.run import _start_worker, run_document
from fenceproof.upstream import Upstream

TRIVIAL = ["x = 1\n", "import asyncio\nawait asyncio.sleep(0)\n", "print(x)\n"]
IMPORTS = "import fastapi, sqlalchemy.ext.asyncio, sqlalchemy.orm, asyncpg\n"
SERIES = {  # name: (first block, count queries)
    "trivial": ("x = 0\n", False),
    "trivial, counting queries": ("x = 0\n", True),
    "importing FastAPI + SQLAlchemy": (IMPORTS, False),
}


def blocks(n: int, first: str, count_queries: bool) -> list[Block]:
    attrs = {"expect": "queries:0"} if count_queries else {}
    rel = f"bench/doc{n}.md"
    return [
        Block(
            path=Path("/bench") / rel, rel=rel, line=10 * i + 1, lang="python", code=code, attrs=dict(attrs)
        )
        for i, code in enumerate([first, *TRIVIAL])
    ]


def worker_ready_s(flags: list[str], forkserver: Forkserver | None) -> float:
    """Seconds from asking for a worker to its "ready" message."""
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        worker = _start_worker(Path(tmp), Path(tmp) / "log", dict(os.environ), flags, forkserver)
        assert worker.receive(60) is not None
        elapsed = time.perf_counter() - t
        worker.end()
    return elapsed


def row(label: str, values: list[float]) -> str:
    mean = statistics.mean(values)
    spread = f"min {min(values) * 1000:6.1f}  max {max(values) * 1000:6.1f}"
    return f"  {label:<30} mean {mean * 1000:7.1f} ms   {spread}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--documents", type=int, default=10)
    args = parser.parse_args()
    n = args.documents
    print(
        f"Python {platform.python_version()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}"
    )
    t0 = time.perf_counter()
    with open_server() as server, Upstream() as upstream:
        print(f"server: {server.source}, PostgreSQL {server.server_version}, start {server.start_s:.3f} s")
        t = time.perf_counter()
        template = server.create_template()
        print(f"template create: {time.perf_counter() - t:.3f} s")
        t = time.perf_counter()
        forkserver = Forkserver()
        print(f"fork server start (preloading {len(PRELOAD)} modules): {time.perf_counter() - t:.3f} s")
        with forkserver:
            create, drop = [], []
            for _ in range(n):
                t = time.perf_counter()
                name = server.create_database(template)
                create.append(time.perf_counter() - t)
                t = time.perf_counter()
                server.drop_database(name)
                drop.append(time.perf_counter() - t)
            print(f"parts alone ({n} each):")
            print(row("CREATE DATABASE ... TEMPLATE", create))
            print(row("DROP DATABASE ... WITH (FORCE)", drop))
            for flags, fork in itertools.product(([], ["queries"]), (None, forkserver)):
                label = f"worker ready, {'forked' if fork else 'spawned'}{', queries' if flags else ''}"
                print(row(label, [worker_ready_s(flags, fork) for _ in range(n)]))
            for (title, (first, count_queries)), fork in itertools.product(
                SERIES.items(), (None, forkserver)
            ):
                setup, run, teardown, total = [], [], [], []
                for i in range(n):
                    t = time.perf_counter()
                    result = run_document(
                        blocks(i, first, count_queries), server, template, upstream.url, forkserver=fork
                    )
                    total.append(time.perf_counter() - t)
                    assert all(r.status == "ok" for r in result.records.values()), result.records
                    setup.append(result.setup_s)
                    teardown.append(result.teardown_s)
                    run.append(total[-1] - result.setup_s - result.teardown_s)
                how = "forked" if fork else "spawned"
                print(f"per document: {title}, worker {how} ({n} documents x {1 + len(TRIVIAL)} blocks):")
                print(row("setup (db + worker, overlapped)", setup))
                print(row("run (blocks + per-block checks)", run))
                print(row("teardown", teardown))
                print(row("total", total))
        t = time.perf_counter()
    print(f"close (stop cluster): {time.perf_counter() - t:.3f} s; wall {time.perf_counter() - t0:.2f} s")


if __name__ == "__main__":
    main()
