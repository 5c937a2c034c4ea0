"""What a killed run leaves on this machine, and removing it.

A run marks each directory it makes (throwaway clusters ``fenceproof-pg-*``, document scratch folders
``fenceproof-doc-*``) with an owner file naming its pid and that pid's start time. Two things remove them once
the owner is gone: the run's watchdog (``python -m fenceproof.leftovers CLUSTER_DIR|- OWNER RUN_ID``, which
waits for its parent's end of a pipe to close, and then also drops the run's databases on a DATABASE_URL
server), and the next run (:func:`sweep`), which says what it removed. A directory without an owner file is
never touched.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from fenceproof.procs import OWNER_FILE, alive, owner_gone

CLUSTER_PREFIX = "fenceproof-pg-"
DOC_PREFIX = "fenceproof-doc-"
CLUSTER_PARENTS = ("/dev/shm", "/tmp")  # noqa: S108 (where postgres.py makes clusters)
CLUSTER_PARENT_ENV = "FENCEPROOF_CLUSTER_PARENT"  # another folder for the throwaway clusters


def remove_cluster(directory: Path) -> None:
    """Shut down the postmaster of the cluster in ``directory`` (immediate shutdown: SIGQUIT), remove it."""
    try:
        pid = int((directory / "data" / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        pid = 0
    if pid > 0 and alive(pid) and str(directory) in _command(pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGQUIT)
        deadline = time.monotonic() + 10
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    shutil.rmtree(directory, ignore_errors=True)


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def cluster_parents() -> tuple[str, ...]:
    chosen = os.environ.get(CLUSTER_PARENT_ENV)
    return (chosen,) if chosen else CLUSTER_PARENTS


def _candidates() -> list[tuple[str, Path]]:
    found = [
        ("cluster", Path(p)) for parent in cluster_parents() for p in glob.glob(f"{parent}/{CLUSTER_PREFIX}*")
    ]
    found += [("scratch folder", Path(p)) for p in glob.glob(f"{tempfile.gettempdir()}/{DOC_PREFIX}*")]
    return found


def sweep() -> list[str]:
    """Remove the clusters and scratch folders of runs that are gone; return what was removed."""
    removed = []
    for kind, directory in _candidates():
        if not (directory / OWNER_FILE).exists() or not owner_gone(directory):
            continue
        if kind == "cluster":
            remove_cluster(directory)
        else:
            shutil.rmtree(directory, ignore_errors=True)
        if not directory.exists():
            removed.append(f"{kind} {directory}")
    if removed:
        print(f"fenceproof: removed what killed runs left: {', '.join(removed)}", file=sys.stderr)
    return removed


def owned_by(owner: str) -> list[Path]:
    """Scratch folders whose owner file says ``owner`` (a run's "<pid> <start time>")."""
    out = []
    for kind, directory in _candidates():
        with contextlib.suppress(OSError):
            if kind == "scratch folder" and (directory / OWNER_FILE).read_text().strip() == owner.strip():
                out.append(directory)
    return out


def drop_run_databases(conninfo: str, run_id: str) -> None:
    """Drop the databases of run ``run_id`` (``fenceproof_<run id>_<kind><n>``, never another name)."""
    import re

    import psycopg
    from psycopg import sql

    ours = re.compile(rf"fenceproof_{re.escape(run_id)}_[a-z]+[0-9]+")
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as conn:
        names = [r[0] for r in conn.execute("SELECT datname FROM pg_database").fetchall()]
        for name in filter(ours.fullmatch, names):
            with contextlib.suppress(psycopg.Error):
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def watch(cluster: str, owner: str, run_id: str) -> None:
    """Wait until the parent's end of stdin closes. If it said "done" first, everything is cleaned up; else it
    died: remove its cluster (or drop its databases on DATABASE_URL's server) and its scratch folders."""
    said = b""
    with contextlib.suppress(OSError):
        while chunk := sys.stdin.buffer.read(4096):
            said += chunk
    if b"done" in said:
        return
    if cluster != "-":
        remove_cluster(Path(cluster))
    elif os.environ.get("FENCEPROOF_WATCH_CONNINFO"):
        with contextlib.suppress(Exception):
            drop_run_databases(os.environ["FENCEPROOF_WATCH_CONNINFO"], run_id)
    for folder in owned_by(owner):
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    watch(sys.argv[1], sys.argv[2], sys.argv[3])
