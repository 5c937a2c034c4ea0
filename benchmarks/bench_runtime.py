"""Where the runtime's time goes: cluster start, template, and per-document overhead.

    uv run python benchmarks/bench_runtime.py [--documents 10]

Per document, with trivial blocks (so the numbers are the engine's own cost): create the database and start the
worker (setup), run the blocks, then leak check + stop the worker + drop the database (teardown). A second series
has documents that count queries, whose worker imports SQLAlchemy before the first block.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from fenceproof.models import Block
from fenceproof.postgres import open_server
from fenceproof.run import run_document
from fenceproof.upstream import Upstream

TRIVIAL = ["x = 1\n", "import asyncio\nawait asyncio.sleep(0)\n", "print(x)\n"]


def blocks(n: int, *, count_queries: bool) -> list[Block]:
    attrs = {"expect": "queries:0"} if count_queries else {}
    rel = f"bench/doc{n}.md"
    return [
        Block(
            path=Path("/bench") / rel, rel=rel, line=10 * i + 1, lang="python", code=code, attrs=dict(attrs)
        )
        for i, code in enumerate(TRIVIAL)
    ]


def worker_start(flags: list[str]) -> float:
    """Seconds from spawning ``python -m fenceproof.worker`` to its "ready" message."""
    read_fd, write_fd = os.pipe()
    t = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "fenceproof.worker", str(write_fd), str(os.getpid()), *flags],
        stdin=subprocess.PIPE,
        pass_fds=(write_fd,),
    )
    os.close(write_fd)
    os.read(read_fd, 1 << 16)
    elapsed = time.perf_counter() - t
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait()
    os.close(read_fd)
    return elapsed


def row(label: str, values: list[float]) -> str:
    mean = statistics.mean(values)
    spread = f"min {min(values) * 1000:6.1f}  max {max(values) * 1000:6.1f}"
    return f"  {label:<26} mean {mean * 1000:7.1f} ms   {spread}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--documents", type=int, default=10)
    args = parser.parse_args()
    print(f"{platform.python_version()} on {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    t0 = time.perf_counter()
    with open_server() as server, Upstream() as upstream:
        print(f"server: {server.source}, PostgreSQL {server.server_version}, start {server.start_s:.3f} s")
        t = time.perf_counter()
        template = server.create_template()
        print(f"template create: {time.perf_counter() - t:.3f} s")
        create, drop = [], []
        for _ in range(args.documents):
            t = time.perf_counter()
            name = server.create_database(template)
            create.append(time.perf_counter() - t)
            t = time.perf_counter()
            server.drop_database(name)
            drop.append(time.perf_counter() - t)
        print("database alone:")
        print(row("CREATE DATABASE ... TEMPLATE", create))
        print(row("DROP DATABASE ... (FORCE)", drop))
        for flags in ([], ["queries"]):
            starts = []
            for _ in range(args.documents):
                starts.append(worker_start(flags))
            print(row(f"worker start {' '.join(flags) or 'plain'}", starts))
        for count_queries in (False, True):
            setup, run, teardown, total = [], [], [], []
            for n in range(args.documents):
                t = time.perf_counter()
                result = run_document(blocks(n, count_queries=count_queries), server, template, upstream.url)
                total.append(time.perf_counter() - t)
                assert all(r.status == "ok" for r in result.records.values()), result.records
                setup.append(result.setup_s)
                teardown.append(result.teardown_s)
                run.append(total[-1] - result.setup_s - result.teardown_s)
            title = "counting queries (imports SQLAlchemy)" if count_queries else "plain"
            print(f"per document, {title}, {args.documents} documents x {len(TRIVIAL)} trivial blocks:")
            print(row("setup (db + worker)", setup))
            print(row("run (3 blocks + checks)", run))
            print(row("teardown", teardown))
            print(row("total", total))
        t = time.perf_counter()
    print(f"close (stop cluster): {time.perf_counter() - t:.3f} s; wall {time.perf_counter() - t0:.2f} s")


if __name__ == "__main__":
    main()
