"""Where the time of ``fenceproof verify`` goes. A benchmark that prints figures, not a test.

    uv run python benchmarks/bench_verify.py [--runs 3] [PATH ...]

Each run is a cold ``fenceproof verify`` in a fresh process: it starts its own throwaway PostgreSQL cluster
(unless DATABASE_URL is set) and verifies PATH (default: the two first rules). The engine's own overhead is
everything except the blocks' own execution and the one-off starts and stops (PostgreSQL, and the fork server
that imports once the libraries every document's blocks import), divided by the documents: Python start-up,
corpus loading, lint, creating and dropping each database, forking each worker, the leak check, the report.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = [
    "skills/python-backend/rules/asyncio-cancellation.md",
    "skills/python-backend/rules/sqlalchemy-relationships.md",
]


def one_run(paths: list[str]) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.json"
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "fenceproof.cli", "verify", *paths, "--report", str(out)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.perf_counter() - started
        if done.returncode != 0:
            sys.exit(f"verify failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
        data = json.loads(out.read_text())
    t = data["timings"]
    documents = data["summary"]["documents"]
    # One-off starts are not per-document overhead: PostgreSQL, and the fork server's imports of the libraries
    # the blocks themselves import (paid once instead of in every document).
    one_off = t.get("postgres_start_s", 0.0) + t.get("forkserver_start_s", 0.0) + t.get("servers_stop_s", 0.0)
    overhead = wall - t.get("blocks_s", 0.0) - one_off
    return {
        "process wall": wall,
        "engine wall (in-process)": t["wall_s"],
        "postgres start": t.get("postgres_start_s", 0.0),
        "worker pre-imports (fork server)": t.get("forkserver_start_s", 0.0),
        "servers stop (cluster, fork server)": t.get("servers_stop_s", 0.0),
        "lint (one ruff run)": t.get("lint_s", 0.0),
        "document setup (create db + worker)": t.get("setup_s", 0.0),
        "blocks' own execution": t.get("blocks_s", 0.0),
        "document teardown (leak check + drop db)": t.get("teardown_s", 0.0),
        "engine overhead per document (all / docs)": overhead / max(documents, 1),
        "  of which per-document setup + teardown": (t.get("setup_s", 0.0) + t.get("teardown_s", 0.0))
        / max(documents, 1),
        "  of which fixed per run (start-up, stop)": overhead
        - t.get("setup_s", 0.0)
        - t.get("teardown_s", 0.0),
        "documents": documents,
        "blocks": data["summary"]["blocks"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("paths", nargs="*", default=DEFAULT)
    args = parser.parse_args()
    runs = [one_run(args.paths) for _ in range(args.runs)]
    print(f"fenceproof verify, {args.runs} cold runs of {', '.join(args.paths)}")
    for key in runs[0]:
        values = [r[key] for r in runs]
        if key in ("documents", "blocks"):
            print(f"  {key:<42} {int(values[0])}")
        else:
            print(
                f"  {key:<42} median {statistics.median(values):6.3f} s   min {min(values):6.3f}   max {max(values):6.3f}"
            )


if __name__ == "__main__":
    main()
