"""Parallel and cached runs of ``fenceproof verify`` on the whole skill. A benchmark that prints figures, not a test.

    uv run python benchmarks/bench_parallel.py [--jobs N]

1. A cold ``verify --no-cache`` (its own PostgreSQL cluster unless DATABASE_URL is set). Its limit is the
   PostgreSQL start plus the best split of the documents' block time over N cores: each document's full run and
   its Correct-chain run are the units, their block times taken from the report; the split is the exact optimum
   for 2 cores and the usual lower bound (max of total / N and the longest unit) otherwise.
2. A second ``verify`` of the unchanged tree: its wall time against the cold one, and whether every row came
   from the cache (documents with a failing block are never cached).
3. One rule edited (a blank line appended, then restored): which documents ran again.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EDITED = "skills/python-backend/rules/asyncio-taskgroup.md"


def verify(*args: str) -> tuple[float, dict]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.json"
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "fenceproof.cli", "verify", *args, "--report", str(out)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.perf_counter() - started
        if done.returncode not in (0, 1):
            sys.exit(f"verify could not run (exit {done.returncode}):\n{done.stderr}")
        return wall, json.loads(out.read_text())


def units(report: dict) -> list[float]:
    """Block seconds of each run: one per document's full run, one per Correct-chain run."""
    full: dict[str, float] = {}
    paste: dict[str, float] = {}
    for row in report["blocks"]:
        full[row["path"]] = full.get(row["path"], 0.0) + row["duration_s"]
        if row["paste"]:
            paste[row["path"]] = paste.get(row["path"], 0.0) + row["paste"]["duration_s"]
    return [t for t in [*full.values(), *paste.values()] if t > 0]


def best_split(times: list[float], cores: int) -> float:
    """The shortest makespan of ``times`` on ``cores`` workers (exact for 2, a lower bound otherwise)."""
    if not times:
        return 0.0
    if cores != 2:
        return max(sum(times) / cores, max(times))
    ms = [round(t * 1000) for t in times]
    reachable = 1  # bit i set: some subset sums to i ms
    for t in ms:
        reachable |= reachable << t
    total = sum(ms)
    best = min(max(s, total - s) for s in range(total + 1) if reachable >> s & 1)
    return best / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args()
    jobs = ["-j", str(args.jobs)]
    cold_wall, cold = verify("--no-cache", *jobs)
    pg = cold["timings"].get("postgres_start_s", 0.0)
    split = best_split(units(cold), args.jobs)
    limit = pg + split
    blocks = sum(units(cold))
    print(
        f"cores: {args.jobs}; blocks: {cold['summary']['blocks']} in {cold['summary']['documents']} documents"
    )
    print(f"cold verify --no-cache: {cold_wall:.2f} s wall ({cold['summary']['failed']} failed)")
    print(
        f"  block time {blocks:.2f} s in {len(units(cold))} runs; best split over {args.jobs} cores {split:.2f} s"
    )
    print(f"  limit = postgres start {pg:.2f} s + best split {split:.2f} s = {limit:.2f} s")
    print(f"  cold / limit = {cold_wall / limit:.2f} (target <= 1.3)")
    warm_wall, warm = verify(*jobs)
    rows = warm["blocks"]
    hits = sum(r["cached"] for r in rows)
    print(f"unchanged tree: {warm_wall:.2f} s wall = {warm_wall / cold_wall:.0%} of cold (target <= 30%)")
    print(f"  {hits} of {len(rows)} rows from the cache")
    path = ROOT / EDITED
    original = path.read_bytes()
    try:
        path.write_bytes(original + b"\n")
        edit_wall, edited = verify(*jobs)
    finally:
        path.write_bytes(original)
    rerun = sorted({r["path"] for r in edited["blocks"] if not r["cached"]})
    print(
        f"after editing {EDITED}: {edit_wall:.2f} s wall; documents run again: {', '.join(rerun) or 'none'}"
    )


if __name__ == "__main__":
    main()
