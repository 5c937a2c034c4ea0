"""Decide each block's outcome from its lint findings, its run records and what its text expects."""

from __future__ import annotations

import ast
import re

from fenceproof import kinds, output
from fenceproof.lint import Finding, is_broken
from fenceproof.models import Block, BlockResult, PasteResult, RunRecord

_UNDEFINED = re.compile(r"name '([^']+)' is not defined")
_MISSING_HINT = (
    "; the block imports a package that is not installed where fenceproof runs: what a corpus imports is the "
    "corpus's business, install it beside fenceproof"
)


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


def _undeclared_warnings(block: Block, record: RunRecord) -> list[str]:
    if block.role == "incorrect":
        return []
    expect = block.expect
    excuses = kinds.expect_kind(expect.kind).excuses_warning if expect else None
    out = []
    for warning in record.warnings:
        if excuses is not None and expect is not None and excuses(expect.target, warning):
            continue
        out.append(f"{warning['category']}: {warning['message']} ({warning.get('where') or 'unknown place'})")
    return out


def _raised(record: RunRecord) -> str:
    where = f" at {record.where}" if record.where else ""
    return f"{record.exc_type}: {record.exc_text}{where}"


def run_verdict(block: Block, record: RunRecord) -> kinds.Verdict:
    """The outcome of a Python block the worker ran: the generic facts first, then its expect kind's judge."""
    expect = block.expect
    kind = kinds.expect_kind(expect.kind) if expect else None
    measured: dict[str, object] = {}
    if record.queries is not None:
        measured["queries"] = record.queries
    if record.status == "timeout":
        return kinds.Verdict(
            "failed",
            record.exc_text or "did not finish within its time limit; its worker was killed",
            measured,
        )
    if record.status in ("not-run", "error"):
        return kinds.Verdict("failed", record.exc_text or record.status, measured)
    if record.status == "raised":
        measured["raised"] = f"{record.exc_type}: {record.exc_text}"
    judged = kind.judge(expect.target, expect.match, record) if kind and kind.judge and expect else None
    if judged is not None and (judged.outcome == "failed" or record.status == "raised"):
        return kinds.Verdict(judged.outcome, judged.message, {**measured, **judged.measured})
    if record.status == "raised":
        wanted = f" (expected {expect})" if expect else ""
        hint = _MISSING_HINT if record.exc_type == "ModuleNotFoundError" else ""
        return kinds.Verdict("failed", f"raised {_raised(record)}{wanted}{hint}", measured)
    undeclared = _undeclared_warnings(block, record)
    if undeclared:
        return kinds.Verdict("failed", "emitted an undeclared warning: " + "; ".join(undeclared), measured)
    if judged is not None:
        return kinds.Verdict(judged.outcome, judged.message, {**measured, **judged.measured})
    return kinds.Verdict("passed", None, measured)


def verdict(block: Block, findings: list[Finding], record: RunRecord | None) -> BlockResult:
    """The outcome of a Python, SQL or file= block. ``record`` is None for blocks that were not run (lint-only)."""
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
        outcome = "linted" if block.kind == "python" else "checked"
        return BlockResult(block, outcome, f"written to {block.attrs['file']} for later blocks", duration)
    if block.kind == "sql":
        if record.status != "ok":
            return BlockResult(
                block, "failed", _raised(record) if record.status == "raised" else record.exc_text
            )
        return BlockResult(block, "checked", "ran in the document's database", duration)
    judged = run_verdict(block, record)
    outcome, message = judged.outcome, judged.message
    if outcome != "failed" and lint_proof:
        message = f"{lint_proof}; {message}" if message else lint_proof
        outcome = "proved"
    return BlockResult(block, outcome, message, duration, judged.measured, record.stdout)


def checked(block: Block) -> BlockResult:
    """The result of a block that is validated or only shown (JSON, TOML, YAML, shell, text)."""
    if block.mode == "skip":
        return BlockResult(block, "skipped", block.reason)
    outcome, message = kinds.language(block.kind).check_block(block.code)
    if outcome == "skipped":
        message = f"```{block.lang} is {message}"
    return BlockResult(block, outcome, message)


def output_verdict(block: Block, shown: BlockResult | None, record: RunRecord | None) -> BlockResult:
    """An output block against what the Python block it shows printed in one run."""
    if shown is None or record is None:
        why = shown.message if shown is not None and shown.outcome == "skipped" else "it was not run"
        where = shown.block.line if shown is not None else "?"
        return BlockResult(block, "skipped", f"shows the block at line {where}, which was skipped: {why}")
    if record.status not in ("ok", "raised"):
        return BlockResult(
            block, "failed", f"not compared: the block at line {shown.block.line} did not finish"
        )
    if output.matches(block.code, record.stdout):
        return BlockResult(block, "checked", f"matches what the block at line {shown.block.line} printed")
    return BlockResult(
        block,
        "failed",
        f"the block at line {shown.block.line} printed something else:\n{output.diff(block.code, record.stdout)}",
    )


def _defines(block: Block) -> set[str]:
    """Names a block binds at its top level (assignments, defs, classes, imports, with/for targets)."""
    try:
        tree = ast.parse(block.code)
    except SyntaxError:
        return set()
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        else:
            names.update(
                n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
            )
    return names


def missed(message: str | None, incorrect: list[Block]) -> str:
    """Where a name that the Correct chain lacks was defined: by an Incorrect block, presumably."""
    found = _UNDEFINED.search(message or "")
    if not found:
        return ""
    lines = [b.line for b in incorrect if found.group(1) in _defines(b)]
    if not lines:
        return ""
    where = ", ".join(map(str, lines))
    return f": defined only by the Incorrect block{'s' if len(lines) > 1 else ''} at line {where}"


def paste_verdict(result: BlockResult, paste: BlockResult, incorrect: list[Block]) -> None:
    """Fold the Correct-chain run's result into the block's: a block that fails only when pasted fails."""
    result.paste = PasteResult(paste.outcome, paste.message, paste.duration_s)
    if paste.outcome == "failed" and result.outcome != "failed":
        result.outcome = "failed"
        if result.block.kind == "output":
            lead = "in the Correct chain on its own (without the Incorrect blocks)"
        else:
            lead = "pasted without the Incorrect blocks, it fails"
        result.message = f"{lead}: {paste.message}{missed(paste.message, incorrect)}"


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
