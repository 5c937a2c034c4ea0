"""What the engine's last report says about each page of the docs site.

The report (``build/fenceproof/report.json``, written by ``fenceproof verify``) has one row per fenced block,
keyed by the Markdown file's path relative to the repository root and the line of the opening fence. A page
counts as verified only when the report is newer than the file and holds a row for each of its blocks.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from fenceproof.kinds import describe_expect
from fenceproof.models import Block
from fenceproof.report import ReportError, read_report

# How each outcome reads on the site, in the order the page summary lists them.
OUTCOME_WORDS: dict[str, str] = {
    "failed": "failed",
    "passed": "passed",
    "proved": "proved",
    "checked": "checked",
    "linted": "lint-only",
    "skipped": "skipped",
}
_MAX_TEXT = 160


@dataclass(frozen=True)
class ReportRows:
    """The rows of one report, with the report file's modification time."""

    rows: dict[tuple[str, int], dict[str, object]]
    mtime: float
    source: str  # the report's path, for messages
    postgres: str | None  # the server version the blocks ran against
    summary: dict[str, object] = field(default_factory=dict)
    environment: dict[str, object] = field(default_factory=dict)  # python, machine, library versions

    def rows_for(self, rel: str) -> dict[int, dict[str, object]]:
        return {line: row for (path, line), row in self.rows.items() if path == rel}


@dataclass(frozen=True)
class BlockStatus:
    """One block's verification status as the site shows it."""

    outcome: str  # an engine outcome, or "unverified"
    label: str  # one line, e.g. "Proved: raises sqlalchemy.exc.MissingGreenlet"


@dataclass(frozen=True)
class PageStatus:
    """A page's overall verification status and each block's, by the line of its opening fence."""

    state: str  # "verified", "failed", "unverified" or "none" (the page has no code blocks)
    label: str
    blocks: dict[int, BlockStatus]


def load_report(path: Path) -> ReportRows | None:
    """Read a report written by ``fenceproof verify``; None when there is none, or it is not a report of this
    engine's schema (an older engine's, say): the site then marks the pages as not verified."""
    if not path.is_file():
        return None
    try:
        data = read_report(path)
    except ReportError:
        return None
    rows: dict[tuple[str, int], dict[str, object]] = {}
    for row in data.get("blocks", []):
        rows[(str(row["path"]), int(row["line"]))] = row
    postgres = data.get("postgres") or {}
    version = postgres.get("server_version") if isinstance(postgres, dict) else None
    return ReportRows(
        rows=rows,
        mtime=path.stat().st_mtime,
        source=str(path),
        postgres=version,
        summary=dict(data.get("summary") or {}),
        environment=dict(data.get("environment") or {}),
    )


def run_summary(report: ReportRows | None) -> str:
    """One sentence on the last engine run as a whole, for the home page."""
    if report is None:
        return "The engine has not been run for this build: no code block on this site is marked as verified."
    s = report.summary
    counts = ", ".join(f"{s[o]} {word}" for o, word in OUTCOME_WORDS.items() if s.get(o))
    text = (
        f"Last engine run: {s.get('blocks', len(report.rows))} code blocks in {s.get('documents', '?')} files"
    )
    text += f" ({counts})" if counts else ""
    if report.postgres:
        text += f", against PostgreSQL {report.postgres}"
    versions = ", ".join(f"{k} {v}" for k, v in report.environment.items() if k != "machine")
    return text + (f", with {versions}." if versions else ".")


def _short(text: str) -> str:
    """One line, at most _MAX_TEXT characters."""
    flat = " ".join(text.replace("```", "").split())  # a title is plain text, not Markdown
    return flat if len(flat) <= _MAX_TEXT else flat[: _MAX_TEXT - 1].rstrip() + "…"


def block_status(block: Block, row: dict[str, object] | None) -> BlockStatus:
    """The label of one block from its report row (None: the report has no row for it)."""
    prefix = f"{block.attrs['file']}: " if "file" in block.attrs else ""
    if row is None:
        return BlockStatus("unverified", prefix + "Not verified: no result in the last report")
    outcome = str(row.get("outcome"))
    message = row.get("message")
    reason = row.get("reason") or row.get("message") or block.reason
    expect = row.get("expect") or block.attrs.get("expect")
    if outcome == "proved":
        # the engine's message says what it proved ("raised sqlalchemy.exc.MissingGreenlet")
        what = message or (
            describe_expect(str(expect), row.get("measured")) if expect else "failed as expected"
        )
        text = f"Proved: {what}"
    elif outcome == "passed":
        text = "Passed: ran clean"
        measured = row.get("measured")
        if expect:
            text += f", {describe_expect(str(expect), measured)}"
        elif isinstance(measured, dict) and isinstance(measured.get("queries"), int):
            text += f" ({measured['queries']} SQL statements)"
    elif outcome == "linted":
        text = f"Lint-only: {reason}" if reason else "Lint-only: ruff clean"
    elif outcome == "skipped":
        text = f"Skipped: {reason}" if reason else "Skipped"
    elif outcome == "checked" and block.kind == "output":
        text = "Output: what the block above printed, compared line by line"
    elif outcome == "checked":
        text = f"Checked: valid {block.lang}"
    elif outcome == "failed":
        text = f"Failed: {message}" if message else "Failed"
    else:
        return BlockStatus("unverified", prefix + f"Not verified: unknown outcome {outcome!r}")
    return BlockStatus(outcome, prefix + _short(text))


def page_status(report: ReportRows | None, rel: str, path: Path, blocks: list[Block]) -> PageStatus:
    """The verification status of one Markdown file (``rel`` relative to the repository root)."""
    if not blocks:
        return PageStatus("none", "No code blocks", {})
    if report is None:
        why = "Not verified: no engine report (run fenceproof verify)"
        return PageStatus("unverified", why, {b.line: block_status(b, None) for b in blocks})
    rows = report.rows_for(rel)
    if path.stat().st_mtime > report.mtime:
        why = "Not verified: the file changed after the last report"
        return PageStatus("unverified", why, {b.line: block_status(b, None) for b in blocks})
    statuses: dict[int, BlockStatus] = {}
    for block in blocks:
        row = rows.get(block.line)
        if row is not None and str(row.get("lang")) != block.lang:
            row = None  # the report describes another version of the file
        statuses[block.line] = block_status(block, row)
    counts = Counter(status.outcome for status in statuses.values())
    missing = counts.get("unverified", 0)
    total = len(blocks)
    if missing:
        label = f"Not verified: {missing} of {total} blocks are not in the last report"
        return PageStatus("unverified", label, statuses)
    parts = ", ".join(f"{counts[o]} {word}" for o, word in OUTCOME_WORDS.items() if counts.get(o))
    noun = "block" if total == 1 else "blocks"
    if counts.get("failed"):
        return PageStatus("failed", f"Failing: {total} {noun} ({parts})", statuses)
    where = f" on PostgreSQL {report.postgres}" if report.postgres else ""
    return PageStatus("verified", f"Verified{where}: {total} {noun} ({parts})", statuses)
