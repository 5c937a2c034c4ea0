"""``fenceproof eval run``: placeholder until the runner lands."""

from __future__ import annotations

import argparse

from rich.console import Console


def add_run_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    r = sub.add_parser("run", help="run an agent on the tasks, grade each result, print pass rates")
    r.add_argument("--agent", metavar="CMD")


def run_command(args: argparse.Namespace, out: Console, err: Console) -> int:
    err.print("eval run: not implemented yet")
    return 2
