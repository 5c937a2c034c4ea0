"""Processes a run owns: ending a worker with everything it started, and knowing whether a run is still alive.

Linux only (``/proc``, ``prctl``); elsewhere the calls degrade to killing the one process or group they name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path
from typing import NoReturn

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
# In each directory a run makes: "<pid> <start time>" of the process that owns it.
OWNER_FILE = "fenceproof-owner"


def _prctl(option: int, value: int) -> bool:
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(option, value, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def become_subreaper() -> bool:
    """Orphaned descendants (double forks, ``setsid`` daemons) are re-parented to this process, not to init."""
    return _prctl(PR_SET_CHILD_SUBREAPER, 1)


def die_with_parent(parent_pid: int) -> None:
    """Get SIGKILL when the parent (thread) goes away; exit now if it already has."""
    _prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL))
    if os.getppid() != parent_pid:
        os._exit(1)


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (state is [0], ppid [1], start time [19])."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (tells a pid apart from a later reuse), or None."""
    fields = _stat(pid)
    return fields[19] if fields and len(fields) > 19 else None


def process_info(pid: int) -> tuple[int, float, str] | None:
    """(pid, start time as epoch seconds, command line clipped to 80 characters), or None if it is gone."""
    ticks = start_time(pid)
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None
    if ticks is None:
        return None
    since_start = time.clock_gettime(time.CLOCK_BOOTTIME) - int(ticks) / os.sysconf("SC_CLK_TCK")
    return pid, time.time() - since_start, command.strip()[:80]


def alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    fields = _stat(pid)
    return bool(fields) and fields[0] not in ("Z", "X")


def killed(pid: int) -> bool:
    """Whether ``pid`` is gone, a zombie, or has a SIGKILL pending (it will be gone in a moment)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    if fields.get("State", "").strip()[:1] in ("Z", "X"):
        return True
    pending = int(fields.get("SigPnd", "0").strip(), 16) | int(fields.get("ShdPnd", "0").strip(), 16)
    return bool(pending & (1 << (signal.SIGKILL - 1)))


def _parents() -> dict[int, int]:
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields:
                out[int(entry)] = int(fields[1])
    return out


def children(parent: int) -> list[int]:
    """The live direct children of ``parent``."""
    return [pid for pid, ppid in _parents().items() if ppid == parent]


def descendants(root: int) -> list[int]:
    """Every live process below ``root`` in the process tree (children first found first)."""
    parents = _parents()
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def marked(marker: str) -> list[int]:
    """Processes whose environment holds ``marker`` (``NAME=value``), e.g. what a worker's block started."""
    needle = marker.encode() + b"\0"
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                env = Path(f"/proc/{entry}/environ").read_bytes()
            except OSError:
                continue
            if env.startswith(needle) or b"\0" + needle in env:
                out.append(int(entry))
    return out


def _signal(pids: list[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def kill_tree(pid: int, marker: str | None = None) -> None:
    """SIGKILL ``pid``, its process group, every process below it and every process carrying ``marker``.

    The tree is stopped first (SIGSTOP, repeated until nothing new appears), so nothing can fork away while
    it is being killed.
    """
    stopped: set[int] = set()
    for _round in range(20):
        members = {pid, *descendants(pid), *(marked(marker) if marker else [])}
        new = [p for p in members if p not in stopped and alive(p)]
        if not new:
            break
        _signal(new, signal.SIGSTOP)
        stopped.update(new)
    _signal(sorted(stopped | {pid}), signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def keep(worker: int) -> NoReturn:
    """The keeper of a worker (its parent, a subreaper): wait for it, reaping what is re-parented here meanwhile;
    then end what it left and exit as it did (the same code, or killed by the same signal)."""
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            os._exit(70)
        if pid == worker:
            break
    for pid in children(os.getpid()):
        kill_tree(pid)
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    code = os.waitstatus_to_exitcode(status)
    if code < 0:  # die of the same signal, so the fork server reports it
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    os._exit(code)


def owner_line() -> str:
    """What a run writes into the directories it owns: its pid and that pid's start time."""
    return f"{os.getpid()} {start_time(os.getpid())}\n"


def write_owner(directory: Path) -> None:
    (directory / OWNER_FILE).write_text(owner_line())


def owner_gone(directory: Path) -> bool:
    """Whether ``directory`` was made by a run that no longer exists (its owner file names a dead process).
    False when it has no (readable) owner file: then it is not ours to judge."""
    try:
        pid_text, _, started = (directory / OWNER_FILE).read_text().partition(" ")
        pid = int(pid_text)
    except (OSError, ValueError):
        return False
    return not alive(pid) or start_time(pid) != started.strip()
