"""The one pipeline driver: corpus -> lint -> run (the full run and the Correct chain) -> prove -> report.

The CLI and the pytest plugin both use ``Pipeline``: the CLI runs every document, the plugin one document at a
time as pytest reaches its blocks; both end with the same report.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

from fenceproof import conditions, kinds
from fenceproof.blocks import shown_block
from fenceproof.corpus import Corpus
from fenceproof.lint import Finding, lint_documents
from fenceproof.models import Block, BlockResult, Document, RunRecord
from fenceproof.prove import blame_leaks, checked, output_verdict, paste_verdict, verdict
from fenceproof.report import Report

DocumentDone = Callable[[Document, list[BlockResult]], None]


def executed(block: Block) -> bool:
    """Blocks the document's worker runs (or writes): Python to run or write, and SQL."""
    if block.mode == "file":
        return True
    if block.mode in ("skip", "lint"):
        return False
    return block.kind in ("python", "sql")


class Runtime:
    """The PostgreSQL server, its template database and the upstream HTTP server, opened on first need."""

    def __init__(self) -> None:
        self._stack = ExitStack()
        self.server = None
        self.template: str | None = None
        self.upstream_url = ""
        self.forkserver = None
        self.start_s = 0.0
        self.forkserver_s = 0.0
        self.stop_s = 0.0

    def ensure(self) -> None:
        if self.server is not None:
            return
        from fenceproof.forkserver import Forkserver
        from fenceproof.postgres import open_server
        from fenceproof.upstream import Upstream

        started = time.perf_counter()
        self.server = self._stack.enter_context(open_server(os.environ))
        self.template = self.server.create_template()
        self.upstream_url = self._stack.enter_context(Upstream()).url
        self.start_s = time.perf_counter() - started
        # Workers are forked from a process that has already imported the corpus's heavy libraries.
        started = time.perf_counter()
        self.forkserver = self._stack.enter_context(Forkserver())
        self.forkserver_s = time.perf_counter() - started

    def postgres(self) -> dict[str, object] | None:
        if self.server is None:
            return None
        return {"server_version": self.server.server_version, "source": self.server.source}

    def close(self) -> None:
        started = time.perf_counter()
        self._stack.close()
        self.stop_s = time.perf_counter() - started


@contextmanager
def runtime() -> Iterator[Runtime]:
    rt = Runtime()
    try:
        yield rt
    finally:
        rt.close()


@dataclass
class _Run:
    records: dict[int, RunRecord] = field(default_factory=dict)
    leaks: list[dict] = field(default_factory=list)


def _execute(blocks: list[Block], rt: Runtime, timings: dict[str, float], key: str) -> _Run:
    if not blocks:
        return _Run()
    from fenceproof.run import run_document

    rt.ensure()
    started = time.perf_counter()
    outcome = run_document(blocks, rt.server, rt.template, rt.upstream_url, forkserver=rt.forkserver)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - started
    timings["setup_s"] = timings.get("setup_s", 0.0) + outcome.setup_s
    timings["teardown_s"] = timings.get("teardown_s", 0.0) + outcome.teardown_s
    timings[key] = timings.get(key, 0.0) + elapsed - outcome.setup_s - outcome.teardown_s
    return _Run(outcome.records, outcome.leaks)


def _results(
    document: Document, blocks: list[Block], findings: dict[tuple[str, int], list[Finding]], run: _Run
) -> dict[int, BlockResult]:
    """The outcome of each of ``blocks`` in one run (outputs compared with what their block printed)."""
    results: dict[int, BlockResult] = {}
    for block in blocks:
        if block.kind == "output":
            continue
        if executed(block) or block.mode == "lint":
            results[block.line] = verdict(
                block, findings.get((block.rel, block.line), []), run.records.get(block.line)
            )
        elif block.mode == "skip":
            results[block.line] = BlockResult(block, "skipped", block.reason)
        else:
            results[block.line] = checked(block)
    for block in blocks:
        if block.kind == "output":
            shown = shown_block(document.blocks, block)
            shown_result = results.get(shown.line) if shown else None
            record = run.records.get(shown.line) if shown else None
            results[block.line] = output_verdict(block, shown_result, record)
    blame_leaks({line: results[line] for line in run.records if line in results}, run.leaks)
    return results


def verify_document(
    document: Document, findings: dict[tuple[str, int], list[Finding]], rt: Runtime, timings: dict[str, float]
) -> list[BlockResult]:
    """Run one document's blocks twice (all of them; the Correct chain alone) and decide every block's outcome."""
    unmet = {b.line: why for b in document.blocks if b.requires and (why := conditions.unmet(b.requires))}
    cannot = {
        b.line: why for b in document.blocks if b.expect and (why := kinds.missing_module(b.expect.kind))
    }
    active = [b for b in document.blocks if b.line not in unmet and b.line not in cannot and b.mode != "skip"]
    shown_skipped = {
        b.line
        for b in active
        if b.kind == "output" and (s := shown_block(document.blocks, b)) and s.line in unmet
    }
    active = [b for b in active if b.line not in shown_skipped]
    to_run = [b for b in active if executed(b)]
    results = _results(document, active, findings, _execute(to_run, rt, timings, "blocks_s"))
    incorrect = [b for b in to_run if b.role == "incorrect"]
    if incorrect:
        chain = [b for b in active if b.role != "incorrect" and b not in incorrect]
        chain = [b for b in chain if b.kind != "output" or _shows_chain_block(document, b, incorrect)]
        chain_run = [b for b in chain if executed(b)]
        if chain_run:
            pasted = _results(document, chain, findings, _execute(chain_run, rt, timings, "paste_s"))
            for line, paste in pasted.items():
                paste_verdict(results[line], paste, incorrect)
    for block in document.blocks:
        if block.line in unmet:
            results[block.line] = BlockResult(block, "skipped", unmet[block.line])
        elif block.line in cannot:
            results[block.line] = BlockResult(block, "failed", cannot[block.line])
        elif block.line in shown_skipped:
            results[block.line] = BlockResult(block, "skipped", "the block it shows was skipped")
        elif block.mode == "skip":
            results[block.line] = BlockResult(block, "skipped", block.reason)
    return [results[b.line] for b in document.blocks]


def _shows_chain_block(document: Document, output: Block, incorrect: list[Block]) -> bool:
    shown = shown_block(document.blocks, output)
    return shown is not None and shown not in incorrect


class Pipeline:
    """One verify run over a corpus: lint everything once, run documents as they are asked for, report."""

    def __init__(self, corpus: Corpus, rt: Runtime) -> None:
        self.corpus = corpus
        self.rt = rt
        self.started = time.perf_counter()
        self.timings: dict[str, float] = {}
        lint_started = time.perf_counter()
        self.findings = lint_documents(corpus.documents)
        self.timings["lint_s"] = time.perf_counter() - lint_started
        self.results: dict[str, list[BlockResult]] = {}

    def document(self, document: Document) -> list[BlockResult]:
        if document.rel not in self.results:
            self.results[document.rel] = verify_document(document, self.findings, self.rt, self.timings)
        return self.results[document.rel]

    def run_all(self, on_document: DocumentDone | None = None) -> None:
        for document in self.corpus.documents:
            done = self.document(document)
            if on_document:
                on_document(document, done)

    def report(self) -> Report:
        """The report of what has run so far; call after the runtime is closed to count its stop time."""
        from fenceproof import budget

        timings = dict(self.timings)
        timings["postgres_start_s"] = self.rt.start_s
        timings["forkserver_start_s"] = self.rt.forkserver_s
        timings["servers_stop_s"] = self.rt.stop_s
        timings["wall_s"] = time.perf_counter() - self.started
        documents = [d.rel for d in self.corpus.documents if d.rel in self.results]
        results = [r for rel in documents for r in self.results[rel]]
        rows = [budget.row_json(r) for skill in self.corpus.skill_dirs for r in budget.measure(skill)]
        return Report(results, documents, self.rt.postgres(), timings, rows)


def verify(corpus: Corpus, rt: Runtime, on_document: DocumentDone | None = None) -> Report:
    """Verify every document of ``corpus`` with the servers of ``rt``."""
    pipeline = Pipeline(corpus, rt)
    pipeline.run_all(on_document)
    return pipeline.report()
