"""The whole pipeline: corpus -> lint -> run -> prove -> report."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

from fenceproof.blocks import PYTHON, SQL
from fenceproof.checks import check_block
from fenceproof.corpus import Corpus
from fenceproof.lint import Finding, lint_documents
from fenceproof.models import Block, BlockResult, Document
from fenceproof.prove import blame_leaks, verdict
from fenceproof.report import Report

DocumentDone = Callable[[Document, list[BlockResult]], None]


def executed(block: Block) -> bool:
    """Blocks the document's worker runs (or writes): Python to run or write, and SQL."""
    if block.mode == "file":
        return True
    if block.mode in ("skip", "lint"):
        return False
    return block.lang in PYTHON or block.lang in SQL


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


def verify_document(
    document: Document, findings: dict[tuple[str, int], list[Finding]], rt: Runtime, timings: dict[str, float]
) -> list[BlockResult]:
    """Run one document's blocks and decide every block's outcome."""
    to_run = [b for b in document.blocks if executed(b)]
    records: dict[int, object] = {}
    leaks: list[dict] = []
    if to_run:
        from fenceproof.run import run_document

        rt.ensure()
        started = time.perf_counter()
        outcome = run_document(
            to_run,
            rt.server,  # type: ignore[arg-type]
            rt.template,
            rt.upstream_url,
            forkserver=rt.forkserver,
        )
        elapsed = time.perf_counter() - started
        records, leaks = outcome.records, outcome.leaks  # type: ignore[assignment]
        timings["setup_s"] = timings.get("setup_s", 0.0) + outcome.setup_s
        timings["teardown_s"] = timings.get("teardown_s", 0.0) + outcome.teardown_s
        timings["blocks_s"] = timings.get("blocks_s", 0.0) + elapsed - outcome.setup_s - outcome.teardown_s
    results: dict[int, BlockResult] = {}
    for block in document.blocks:
        if block.lang in PYTHON or block.lang in SQL or block.mode == "file":
            if block.mode == "skip":
                results[block.line] = BlockResult(block, "skipped", block.reason)
            else:
                results[block.line] = verdict(
                    block, findings.get((block.rel, block.line), []), records.get(block.line)
                )  # type: ignore[arg-type]
        else:
            results[block.line] = check_block(block)
    blame_leaks({line: results[line] for line in records}, leaks)
    return [results[b.line] for b in document.blocks]


def verify(corpus: Corpus, rt: Runtime, on_document: DocumentDone | None = None) -> Report:
    """Verify every document of ``corpus`` with the servers of ``rt``."""
    started = time.perf_counter()
    timings: dict[str, float] = {}
    lint_started = time.perf_counter()
    findings = lint_documents(corpus.documents)
    timings["lint_s"] = time.perf_counter() - lint_started
    results: list[BlockResult] = []
    for document in corpus.documents:
        done = verify_document(document, findings, rt, timings)
        results.extend(done)
        if on_document:
            on_document(document, done)
    timings["postgres_start_s"] = rt.start_s
    timings["forkserver_start_s"] = rt.forkserver_s
    timings["wall_s"] = time.perf_counter() - started
    return Report(results, [d.rel for d in corpus.documents], rt.postgres(), timings)
