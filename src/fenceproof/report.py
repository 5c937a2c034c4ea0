"""What a verify run found: the JSON report and the terminal summary."""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from rich.console import Console
from rich.table import Table

from fenceproof.models import OUTCOMES, BlockResult
from fenceproof.schemas import validator

REPORT_PATH = Path("build/fenceproof/report.json")  # the last run's report, relative to the repository root
# The libraries whose versions a report records: what the corpus was verified with.
VERSIONED = (
    "fastapi",
    "starlette",
    "pydantic",
    "sqlalchemy",
    "asyncpg",
    "psycopg",
    "alembic",
    "httpx2",
    "aiohttp",
    "uvicorn",
    "pydantic-settings",
    "ruff",
)


@dataclass
class Report:
    results: list[BlockResult]
    documents: list[str]
    postgres: dict[str, object] | None = None
    timings: dict[str, float] = field(default_factory=dict)
    budget: list[dict[str, object]] = field(default_factory=list)  # what each loadable part costs an agent

    @property
    def failed(self) -> list[BlockResult]:
        return [r for r in self.results if r.outcome == "failed"]

    def counts(self, rel: str | None = None) -> dict[str, int]:
        rows = [r for r in self.results if rel is None or r.block.rel == rel]
        return {outcome: sum(r.outcome == outcome for r in rows) for outcome in OUTCOMES}

    def to_json(self) -> dict[str, object]:
        summary: dict[str, object] = {"documents": len(self.documents), "blocks": len(self.results)}
        summary.update(self.counts())
        summary["cached"] = sum(r.cached for r in self.results)
        summary["wall_s"] = round(self.timings.get("wall_s", 0.0), 3)
        return {
            "postgres": self.postgres,
            "summary": summary,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "environment": environment(),
            "budget": self.budget,
            "blocks": [r.to_json() for r in sorted(self.results, key=lambda r: (r.block.rel, r.block.line))],
        }

    def write(self, path: Path) -> None:
        """Write the report, checked against ``schemas/report.schema.json`` first."""
        data = self.to_json()
        problems = check_report(data)
        if problems:
            raise ValueError(f"the engine built a report that breaks its schema: {problems[0]}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2) + "\n", "utf-8")


def check_report(data: object) -> list[str]:
    """How ``data`` breaks the report schema (empty when it does not)."""
    errors = validator("report").iter_errors(data)
    return [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in errors]


class ReportError(Exception):
    """A report that cannot be read or merged; the message names the file."""


def read_report(path: Path) -> dict:
    """A report written by ``fenceproof verify``, checked against the report schema."""
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as error:
        raise ReportError(f"{path}: cannot read a report: {error}") from None
    problems = check_report(data)
    if problems:
        raise ReportError(f"{path}: not a fenceproof report: {problems[0]}")
    return data


def merge_reports(paths: list[Path], tolerate_repeats: bool = False) -> dict:
    """One report from the reports of shard runs (each document verified in exactly one of them; with
    ``tolerate_repeats``, a document verified twice keeps the rows of the first report that has it)."""
    reports = [(path, read_report(path)) for path in paths]
    rows: dict[tuple[str, int], dict] = {}
    for path, data in reports:
        for row in data["blocks"]:
            where = (row["path"], row["line"])
            if where in rows and tolerate_repeats:
                continue
            if where in rows:
                raise ReportError(
                    f"{path}: {row['path']}:{row['line']} is in two of the reports; merge shards only"
                )
            rows[where] = row
    servers = {json.dumps(d["postgres"], sort_keys=True) for _, d in reports if d["postgres"]}
    if len(servers) > 1:
        raise ReportError(f"the reports ran against different servers: {', '.join(sorted(servers))}")
    blocks = [rows[k] for k in sorted(rows)]
    timings: dict[str, float] = {}
    for _, data in reports:
        for key, value in data["timings"].items():
            timings[key] = (
                max(timings.get(key, 0.0), value) if key == "wall_s" else timings.get(key, 0.0) + value
            )
    timings["shards"] = len(reports)
    summary: dict[str, object] = {
        "documents": len({b["path"] for b in blocks})
        if tolerate_repeats
        else sum(d["summary"]["documents"] for _, d in reports),
        "blocks": len(blocks),
    }
    summary.update({o: sum(b["outcome"] == o for b in blocks) for o in OUTCOMES})
    summary["cached"] = sum(bool(b.get("cached")) for b in blocks)
    summary["wall_s"] = timings.get("wall_s", 0.0)
    first = reports[0][1]
    merged = {
        "postgres": next((d["postgres"] for _, d in reports if d["postgres"]), None),
        "summary": summary,
        "timings": timings,
        "environment": first["environment"],
        "budget": first["budget"],
        "blocks": blocks,
    }
    problems = check_report(merged)
    if problems:
        raise ReportError(f"the merged report breaks the schema: {problems[0]}")
    return merged


def environment() -> dict[str, str]:
    versions = {"python": platform.python_version(), "machine": f"{platform.system()} {platform.machine()}"}
    for name in VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def render(report: Report, console: Console) -> None:
    """Per-document table, every failure and reason, and where the time went."""
    table = Table(title="fenceproof verify", title_justify="left")
    table.add_column("document")
    for outcome in OUTCOMES:
        table.add_column(outcome, justify="right", style="red" if outcome == "failed" else None)
    for rel in report.documents:
        counts = report.counts(rel)
        table.add_row(rel, *(str(counts[o]) if counts[o] else "." for o in OUTCOMES))
    total = report.counts()
    table.add_row("[bold]total[/bold]", *(f"[bold]{total[o]}[/bold]" for o in OUTCOMES))
    console.print(table)
    notes = [r for r in report.results if r.outcome in ("linted", "skipped") and r.message]
    if notes:
        console.print("[bold]Not run, with reasons[/bold]")
        for r in notes:
            console.print(
                f"  {r.block.where} {r.outcome}: {r.message}", markup=False, highlight=False, soft_wrap=True
            )
    for r in report.failed:
        console.print(f"[red]FAILED[/red] {r.block.where}: ", end="")
        console.print(r.message or "failed", markup=False, highlight=False, soft_wrap=True)
    pasted = [r for r in report.results if r.paste is not None]
    if pasted:
        only = sum(r.paste.outcome == "failed" for r in pasted if r.paste is not None)
        documents = len({r.block.rel for r in pasted})
        console.print(
            f"Paste check: {len(pasted)} Correct and unlabelled blocks of {documents} documents also ran without "
            f"the Incorrect blocks; {only} failed there"
        )
    t = report.timings
    pieces = [
        f"postgres start {t.get('postgres_start_s', 0):.2f} s",
        f"worker pre-imports {t.get('forkserver_start_s', 0):.2f} s",
        f"lint {t.get('lint_s', 0):.2f} s",
        f"document setup {t.get('setup_s', 0):.2f} s",
        f"blocks {t.get('blocks_s', 0):.2f} s",
        f"paste check {t.get('paste_s', 0):.2f} s",
        f"document teardown {t.get('teardown_s', 0):.2f} s",
        f"servers stop {t.get('servers_stop_s', 0):.2f} s",
        f"total {t.get('wall_s', 0):.2f} s",
    ]
    pg = report.postgres
    server = f"PostgreSQL {pg['server_version']} ({pg['source']})" if pg else "no PostgreSQL needed"
    console.print(f"{server}; time: " + ", ".join(pieces))
    verdict = "[red]FAILED[/red]" if report.failed else "[green]OK[/green]"
    cached = sum(r.cached for r in report.results)
    console.print(
        f"{verdict}: {len(report.results)} blocks in {len(report.documents)} documents, "
        + ", ".join(f"{total[o]} {o}" for o in OUTCOMES)
        + (f" ({cached} from the cache of an earlier run; --no-cache runs them)" if cached else "")
    )
