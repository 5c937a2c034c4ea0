"""What a run found: the JSON document and the table (pass rate per condition and task, worst checks)."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from typing import Any

from rich.console import Console
from rich.table import Table

from fenceproof.evals.run import Run
from fenceproof.evals.stats import Rate

TOP_FAILURES = 10


def rates(runs: list[Run]) -> dict[tuple[str, str], Rate]:
    """(condition, task) -> Rate, plus (condition, "all") for each condition."""
    out: dict[tuple[str, str], Rate] = {}
    for run in runs:
        for key in ((run.condition, run.task), (run.condition, "all")):
            old = out.get(key, Rate(0, 0))
            out[key] = Rate(old.passed + run.passed, old.runs + 1)
    return out


def top_failures(runs: list[Run], limit: int = TOP_FAILURES) -> list[dict[str, Any]]:
    counts: Counter[tuple[str, str, str]] = Counter()
    example: dict[tuple[str, str, str], str] = {}
    for run in runs:
        for check in run.failed_checks:
            key = (run.condition, run.task, check.test)
            counts[key] += 1
            example.setdefault(key, check.message)
    return [
        {"condition": c, "task": t, "check": test, "count": n, "example": example[(c, t, test)]}
        for (c, t, test), n in counts.most_common(limit)
    ]


def document(runs: list[Run], meta: dict[str, Any]) -> dict[str, Any]:
    summary = [
        {
            "condition": c, "task": t, "passed": r.passed, "runs": r.runs, "rate": round(r.rate, 4),
            "ci95": [round(x, 4) for x in r.interval],
        }
        for (c, t), r in rates(runs).items()
    ]  # fmt: skip
    return {**meta, "summary": summary, "top_failures": top_failures(runs), "runs": [asdict(r) for r in runs]}


def render(runs: list[Run], out: Console) -> None:
    table_rates = rates(runs)
    conditions = list(dict.fromkeys(r.condition for r in runs))
    tasks = list(dict.fromkeys(r.task for r in runs))
    table = Table(title="pass rate per condition and task (95% interval)")
    table.add_column("task")
    for condition in conditions:
        table.add_column(condition, justify="right")
    for task in [*tasks, "all"]:
        cells = [table_rates[(c, task)].cell() if (c, task) in table_rates else "-" for c in conditions]
        table.add_row(task, *cells, end_section=task == tasks[-1])
    out.print(table)
    worst = top_failures(runs)
    if worst:
        out.print("checks that failed most:")
        for row in worst:
            out.print(
                f"  {row['count']}x {row['condition']} / {row['task']} / {row['check']}: {row['example']}",
                markup=False,
            )
