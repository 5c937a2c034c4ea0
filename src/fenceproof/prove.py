"""Decide each block's outcome from its lint findings, its run record and what its text expects."""

from __future__ import annotations

import re
from typing import Protocol

from fenceproof.blocks import PYTHON
from fenceproof.lint import Finding, is_broken
from fenceproof.models import Block, BlockResult, Expectation


class Record(Protocol):
    """What the runtime observed of one block (``fenceproof.run.RunRecord``)."""

    status: str
    exc_type: str | None
    exc_mro: list[str]
    exc_text: str | None
    where: str | None
    warnings: list[dict]
    queries: int | None
    stdout: str
    duration_s: float


def same_class(expected: str, actual: str) -> bool:
    """``asyncio.CancelledError`` names ``asyncio.exceptions.CancelledError``: a package re-exports a class."""
    if expected == actual:
        return True
    e_module, _, e_name = expected.rpartition(".")
    a_module, _, a_name = actual.rpartition(".")
    return e_name == a_name and bool(e_module) and (a_module + ".").startswith(e_module + ".")


def _any_of(expected: str, names: list[str]) -> bool:
    return any(same_class(expected, name) for name in names)


def _matches(expect: Expectation, text: str) -> bool:
    return expect.match is None or re.search(expect.match, text) is not None


def lint_verdict(block: Block, findings: list[Finding]) -> tuple[str | None, str | None]:
    """(failure message, proof message) from ruff's findings on this block."""
    expect = block.expect
    proof = None
    if expect and expect.kind == "lint":
        hits = [f for f in findings if f.code == expect.target]
        if not hits:
            seen = ", ".join(f.code for f in findings) or "nothing"
            return f"expected ruff to report {expect.target}, but it reported {seen}", None
        proof = f"ruff reported {hits[0]}"
    if block.role == "incorrect":
        bad = [f for f in findings if is_broken(f)]
    else:
        bad = [f for f in findings if not (expect and f.code == expect.target)]
    if bad:
        return "ruff: " + "; ".join(map(str, bad)), None
    return None, proof


def _undeclared_warnings(block: Block, record: Record) -> list[str]:
    if block.role == "incorrect":
        return []
    expect = block.expect
    out = []
    for warning in record.warnings:
        if expect and expect.kind == "warns" and _any_of(expect.target, warning["category_mro"]):
            continue
        out.append(f"{warning['category']}: {warning['message']} ({warning.get('where') or 'unknown place'})")
    return out


def _raised(record: Record) -> str:
    where = f" at {record.where}" if record.where else ""
    return f"{record.exc_type}: {record.exc_text}{where}"


def run_verdict(block: Block, record: Record) -> tuple[str, str | None, dict[str, object]]:
    """(outcome, message, measured) for a block that the worker ran."""
    expect = block.expect
    measured: dict[str, object] = {}
    if record.queries is not None:
        measured["queries"] = record.queries
    if record.status == "timeout":
        return (
            "failed",
            record.exc_text or "did not finish within its time limit; its worker was killed",
            measured,
        )
    if record.status in ("not-run", "error"):
        return "failed", record.exc_text or record.status, measured
    if record.status == "raised":
        measured["raised"] = f"{record.exc_type}: {record.exc_text}"
        if expect and expect.kind == "raises" and _any_of(expect.target, record.exc_mro):
            if not _matches(expect, f"{record.exc_type}: {record.exc_text}"):
                return (
                    "failed",
                    f"raised {record.exc_type} as expected, but its text does not match "
                    f"{expect.match!r}: {record.exc_text}",
                    measured,
                )
            return "proved", f"raised {record.exc_type}: {record.exc_text}", measured
        wanted = f" (expected {expect})" if expect else ""
        return "failed", f"raised {_raised(record)}{wanted}", measured
    if expect and expect.kind == "raises":
        return "failed", f"expected {expect}, but the block ran without raising", measured
    undeclared = _undeclared_warnings(block, record)
    if undeclared:
        return "failed", "emitted an undeclared warning: " + "; ".join(undeclared), measured
    if expect and expect.kind == "warns":
        hits = [w for w in record.warnings if _any_of(expect.target, w["category_mro"])]
        if not hits:
            seen = ", ".join(w["category"] for w in record.warnings) or "none"
            return "failed", f"expected {expect}, but the warnings were: {seen}", measured
        texts = [f"{w['category']}: {w['message']}" for w in hits]
        if not any(_matches(expect, t) for t in texts):
            return "failed", f"warned as expected, but no text matches {expect.match!r}: {texts[0]}", measured
        measured["warned"] = texts[0]
        return "proved", f"warned {texts[0]}", measured
    if expect and expect.kind == "queries":
        counted = record.queries
        if counted != int(expect.target):
            return "failed", f"expected {expect.target} queries, counted {counted}", measured
        return "proved", f"ran {counted} {'query' if counted == 1 else 'queries'}", measured
    return "passed", None, measured


def verdict(block: Block, findings: list[Finding], record: Record | None) -> BlockResult:
    """The block's outcome. ``record`` is None for blocks that were not run (lint-only)."""
    lint_failure, lint_proof = lint_verdict(block, findings)
    duration = record.duration_s if record else 0.0
    if lint_failure:
        return BlockResult(block, "failed", lint_failure, duration)
    if block.mode == "lint":
        if lint_proof:
            return BlockResult(block, "proved", lint_proof)
        return BlockResult(block, "linted", block.reason)
    if record is None:
        return BlockResult(block, "failed", "the engine has no run record for this block")
    if block.mode == "file":
        if record.status != "ok":
            return BlockResult(block, "failed", record.exc_text or record.status, duration)
        outcome = "linted" if block.lang in PYTHON else "checked"
        return BlockResult(block, outcome, f"written to {block.attrs['file']} for later blocks", duration)
    if block.lang == "sql":
        if record.status != "ok":
            return BlockResult(
                block, "failed", _raised(record) if record.status == "raised" else record.exc_text
            )
        return BlockResult(block, "checked", "ran in the document's database", duration)
    outcome, message, measured = run_verdict(block, record)
    if outcome != "failed" and lint_proof:
        message = f"{lint_proof}; {message}" if message else lint_proof
        outcome = "proved"
    return BlockResult(block, outcome, message, duration, measured, record.stdout)  # type: ignore[arg-type]


def blame_leaks(results: dict[int, BlockResult], leaks: list[dict]) -> None:
    """A connection still open when the document ended fails the block that opened it (else the last block)."""
    if not leaks or not results:
        return
    last = max(results)
    by_line: dict[int, list[dict]] = {}
    for leak in leaks:
        line = leak.get("line") if leak.get("line") in results else last
        by_line.setdefault(line, []).append(leak)  # type: ignore[arg-type]
    for line, open_ones in by_line.items():
        result = results[line]
        pids = ", ".join(f"pid {leak.get('pid')} {leak.get('state')}" for leak in open_ones)
        note = (
            f"left {len(open_ones)} database connection(s) open at the end of the document ({pids}): "
            "dispose engines and close pools and connections"
        )
        result.message = (
            f"{result.message}; {note}" if result.outcome == "failed" and result.message else note
        )
        result.outcome = "failed"
