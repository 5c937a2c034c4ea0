"""``fenceproof eval grade TASK DIR`` and ``fenceproof eval run --agent CMD``: argument parsing and output."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from rich.console import Console

from fenceproof.evals.grade import Grade, grade
from fenceproof.evals.tasks import BadInput, load_task
from fenceproof.models import ServerUnavailable


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="fenceproof eval",
        description="Grade a solution against an evals task (exit 0 pass, 1 fail, 2 bad input), or run an agent "
        "on the tasks and report pass rates.",
    )
    sub = top.add_subparsers(dest="action", required=True)
    g = sub.add_parser("grade", help="grade the project in DIR (a copy of it) against TASK's grader")
    g.add_argument("task", help="a task name (evals/tasks/NAME) or a task folder")
    g.add_argument("dir", help="the project to grade; it is copied, never modified")
    g.add_argument("--report", metavar="FILE.json", help="write the grade as JSON here")
    from fenceproof.evals.run_cli import add_run_parser

    add_run_parser(sub)
    return top


def print_grade(result: Grade, out: Console) -> None:
    verdict = "[green]PASS[/green]" if result.passed else "[red]FAIL[/red]"
    out.print(f"{verdict} {result.task}: {result.solution} ({result.seconds:.1f} s)")
    for check in result.failed:
        out.print(f"  [red]x[/red] {check.test}: {check.message}", markup=True, highlight=False)
    if (not result.passed and not result.failed) or os.environ.get("FENCEPROOF_EVAL_PYTEST_ARGS"):
        out.print(result.log, markup=False)


def _grade(args: argparse.Namespace, out: Console) -> int:
    task = load_task(args.task)
    result = grade(task, Path(args.dir))
    print_grade(result, out)
    if args.report:
        result.write(Path(args.report))
    return 0 if result.passed else 1


def main_eval(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
    err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 200)
    try:
        if args.action == "grade":
            return _grade(args, out)
        from fenceproof.evals.run_cli import run_command

        return run_command(args, out, err)
    except (BadInput, ServerUnavailable) as error:
        err.print(f"error: {error}", markup=False, soft_wrap=True)
        return 2
