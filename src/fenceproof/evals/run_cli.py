"""``fenceproof eval run``: arguments, the progress bar, the JSON file and the table."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from fenceproof.evals.grade import Grader
from fenceproof.evals.run import Run, run_all
from fenceproof.evals.table import document, render
from fenceproof.evals.tasks import BadInput, all_tasks, load_task


def add_run_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    r = sub.add_parser(
        "run",
        help="run an agent on the tasks, grade each result, print pass rates",
        description="Placeholders in CMD (shell-quoted when filled in): {prompt_file} {prompt} {dir} {task} "
        "{task_dir}. CMD runs with bash in a scratch copy of the task's starter/ ({dir}); EVAL_PROMPT_FILE, "
        "EVAL_DIR and EVAL_TASK are set too.",
    )
    r.add_argument("--agent", metavar="CMD", help="the agent command (condition 'agent')")
    r.add_argument(
        "--condition",
        metavar="NAME=CMD",
        action="append",
        default=[],
        help="a named agent command (repeatable)",
    )
    r.add_argument("--tasks", nargs="+", metavar="TASK", help="task names or folders (default: all)")
    r.add_argument(
        "--repeat", type=int, default=1, metavar="N", help="runs per condition and task (default 1)"
    )
    r.add_argument(
        "--agent-timeout", type=float, default=900.0, metavar="S", help="per agent run (default 900)"
    )
    r.add_argument("--jobs", type=int, default=1, metavar="N", help="agent runs at once (default 1)")
    r.add_argument("--out", metavar="FILE.json", help="where the JSON goes (default eval-runs/<time>.json)")


def _conditions(args: argparse.Namespace) -> dict[str, str]:
    conditions: dict[str, str] = {}
    if args.agent:
        conditions["agent"] = args.agent
    for spec in args.condition:
        name, sep, command = spec.partition("=")
        if not sep or not name.strip() or not command.strip():
            raise BadInput(f"--condition {spec!r}: expected NAME=CMD")
        if name in conditions:
            raise BadInput(f"--condition {name!r} given twice")
        conditions[name.strip()] = command
    if not conditions:
        raise BadInput("give --agent CMD or at least one --condition NAME=CMD")
    return conditions


def run_command(args: argparse.Namespace, out: Console, err: Console) -> int:
    conditions = _conditions(args)
    if args.repeat < 1:
        raise BadInput("--repeat must be at least 1")
    tasks = [load_task(t) for t in args.tasks] if args.tasks else all_tasks()
    started = datetime.now(UTC)
    path = Path(args.out or f"eval-runs/{started:%Y%m%dT%H%M%SZ}.json")
    logs = path.with_suffix("").parent / (path.stem + "-logs")
    total = len(conditions) * len(tasks) * args.repeat
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err, transient=True,
    )  # fmt: skip
    with Grader() as grader, progress:
        bar = progress.add_task("agent runs", total=total)

        def done(run: Run) -> None:
            verdict = "pass" if run.passed else "fail"
            progress.update(bar, advance=1, description=f"{run.condition}/{run.task}#{run.repeat}: {verdict}")

        runs = run_all(
            grader, conditions, tasks, args.repeat, logs, agent_timeout_s=args.agent_timeout, jobs=args.jobs,
            on_done=done,
        )  # fmt: skip
    meta = {
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "conditions": conditions,
        "tasks": [t.name for t in tasks],
        "repeat": args.repeat,
        "agent_calls": total,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document(runs, meta), indent=2) + "\n", encoding="utf-8")
    render(runs, out)
    out.print(f"{total} agent runs; JSON: {path}; agent logs: {logs}", markup=False)
    return 0
