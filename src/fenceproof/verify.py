"""The one pipeline driver: corpus -> lint -> run (the full run and the Correct chain) -> prove -> report.

The CLI and the pytest plugin both use ``Pipeline``: the CLI runs every document, the plugin one document at a
time as pytest reaches its blocks; both end with the same report.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Literal

from fenceproof import conditions, kinds
from fenceproof.blocks import shown_block
from fenceproof.cache import Cache, document_key
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
        self._lock = threading.Lock()
        self._version_hint: str | None = None
        self._stack = ExitStack()
        self.server = None
        self.template: str | None = None
        self.upstream_url = ""
        self.forkserver = None
        self.start_s = 0.0
        self.forkserver_s = 0.0
        self.stop_s = 0.0

    def ensure(self) -> None:
        with self._lock:
            if self.server is None:
                self._open()

    def server_version_hint(self) -> str:
        """The PostgreSQL version the blocks will run on, without starting a server (for cache keys)."""
        with self._lock:
            if self._version_hint is None:
                if self.server is not None:
                    self._version_hint = str(self.server.server_version)
                else:
                    from fenceproof.postgres import version_hint

                    self._version_hint = version_hint(os.environ)
            return self._version_hint

    def _open(self) -> None:
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


def _execute(blocks: list[Block], rt: Runtime, timings: Timings, key: str) -> _Run:
    if not blocks:
        return _Run()
    from fenceproof.run import run_document

    rt.ensure()
    started = time.perf_counter()
    outcome = run_document(blocks, rt.server, rt.template, rt.upstream_url, forkserver=rt.forkserver)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - started
    timings.add("setup_s", outcome.setup_s)
    timings.add("teardown_s", outcome.teardown_s)
    timings.add(key, elapsed - outcome.setup_s - outcome.teardown_s)
    return _Run(outcome.records, outcome.leaks)


class Timings:
    """Seconds spent per stage, added to from several threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.values: dict[str, float] = {}

    def add(self, key: str, seconds: float) -> None:
        with self._lock:
            self.values[key] = self.values.get(key, 0.0) + seconds


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


@dataclass
class Plan:
    """What one document's verification runs: every block that can run, and its Correct chain on its own."""

    document: Document
    active: list[Block]  # the blocks that are run, checked or compared
    chain: list[Block]  # the Correct chain: empty when the document has no Incorrect block that runs
    incorrect: list[Block]
    settled: dict[int, BlockResult]  # outcomes known without running: conditions unmet, skips, ...

    @property
    def full_run(self) -> list[Block]:
        return [b for b in self.active if executed(b)]

    @property
    def chain_run(self) -> list[Block]:
        return [b for b in self.chain if executed(b)]


def plan(document: Document) -> Plan:
    settled: dict[int, BlockResult] = {}
    for block in document.blocks:
        if block.requires and (why := conditions.unmet(block.requires)):
            settled[block.line] = BlockResult(block, "skipped", why)
        elif block.expect and (why := kinds.missing_module(block.expect.kind)):
            settled[block.line] = BlockResult(block, "failed", why)
        elif block.mode == "skip":
            settled[block.line] = BlockResult(block, "skipped", block.reason)
    for block in document.blocks:
        shown = shown_block(document.blocks, block) if block.kind == "output" else None
        if block.line not in settled and shown is not None and shown.line in settled:
            settled[block.line] = BlockResult(block, "skipped", "the block it shows was skipped")
    active = [b for b in document.blocks if b.line not in settled]
    incorrect = [b for b in active if executed(b) and b.role == "incorrect"]
    chain: list[Block] = []
    if incorrect:
        chain = [b for b in active if b.role != "incorrect"]
        chain = [b for b in chain if b.kind != "output" or _shows_chain_block(document, b, incorrect)]
        if not any(executed(b) for b in chain):
            chain = []
    return Plan(document, active, chain, incorrect, settled)


def combine(
    p: Plan, findings: dict[tuple[str, int], list[Finding]], full: _Run, pasted: _Run | None
) -> list[BlockResult]:
    """Every block's outcome from the full run and the Correct chain's run."""
    results = _results(p.document, p.active, findings, full)
    if p.chain and pasted is not None:
        for line, paste in _results(p.document, p.chain, findings, pasted).items():
            paste_verdict(results[line], paste, p.incorrect)
    results.update(p.settled)
    return [results[b.line] for b in p.document.blocks]


def verify_document(
    document: Document, findings: dict[tuple[str, int], list[Finding]], rt: Runtime, timings: Timings
) -> list[BlockResult]:
    """Run one document's blocks twice (all of them; the Correct chain alone) and decide every block's outcome."""
    p = plan(document)
    full = _execute(p.full_run, rt, timings, "blocks_s")
    pasted = _execute(p.chain_run, rt, timings, "paste_s") if p.chain else None
    return combine(p, findings, full, pasted)


def _shows_chain_block(document: Document, output: Block, incorrect: list[Block]) -> bool:
    shown = shown_block(document.blocks, output)
    return shown is not None and shown not in incorrect


def shard(documents: list[Document], spec: str | None) -> list[Document]:
    """The Kth of N parts (``spec`` = "K/N"): documents in path order, dealt out in turn. Deterministic."""
    if spec is None:
        return documents
    k, n = parse_shard(spec)
    ordered = sorted(documents, key=lambda d: d.rel)
    return [d for i, d in enumerate(ordered) if i % n == k - 1]


def parse_shard(spec: str) -> tuple[int, int]:
    k_text, sep, n_text = spec.partition("/")
    if not (sep and k_text.isdigit() and n_text.isdigit() and 1 <= int(k_text) <= int(n_text)):
        raise ValueError(f"--shard takes K/N with 1 <= K <= N, e.g. 1/2 (not {spec!r})")
    return int(k_text), int(n_text)


class Pipeline:
    """One verify run over a corpus: lint everything once, run documents (in parallel with ``jobs`` > 1, from
    the cache where their inputs did not change), report.

    ``cache``: "off" reads and writes nothing; "use" takes unchanged documents from the cache and stores the
    results of the rest; "refresh" runs every document and stores the results (``verify --no-cache``)."""

    def __init__(
        self, corpus: Corpus, rt: Runtime, cache: Literal["off", "use", "refresh"] = "off", jobs: int = 1
    ) -> None:
        self.corpus = corpus
        self.rt = rt
        self.jobs = max(1, jobs)
        self.cache = Cache(corpus.root, read=cache == "use", write=cache != "off")
        self.started = time.perf_counter()
        self.timings = Timings()
        lint_started = time.perf_counter()
        self.findings = lint_documents(corpus.documents)
        self.timings.add("lint_s", time.perf_counter() - lint_started)
        self.results: dict[str, list[BlockResult]] = {}
        self.rerun: list[str] = []  # documents run again one at a time after a block broke the shared run
        self._lock = threading.Lock()

    def _key(self, document: Document) -> str:
        skill = next(s for s in self.corpus.skill_dirs if s in document.path.parents)
        return document_key(document, self.corpus.root, skill, self.rt.server_version_hint())

    def _cached(self, document: Document) -> tuple[str, list[BlockResult] | None]:
        if not (self.cache.read or self.cache.write):
            return "", None
        key = self._key(document)
        return key, self.cache.load(key, document)

    def _finish(self, document: Document, key: str, results: list[BlockResult]) -> list[BlockResult]:
        if key and not any(r.cached for r in results):
            self.cache.store(key, document, results)
        with self._lock:
            self.results[document.rel] = results
        return results

    def document(self, document: Document) -> list[BlockResult]:
        """One document's results, run now (or taken from the cache) if not done yet."""
        with self._lock:
            done = self.results.get(document.rel)
        if done is not None:
            return done
        key, results = self._cached(document)
        if results is None:
            results = verify_document(document, self.findings, self.rt, self.timings)
        return self._finish(document, key, results)

    def run_all(
        self, documents: list[Document] | None = None, on_document: DocumentDone | None = None
    ) -> None:
        """Verify ``documents`` (default: all). Each document's two runs (all its blocks; its Correct chain) are
        separate jobs on ``jobs`` threads, the longest first; ``on_document`` is called as each document ends."""
        todo = list(self.corpus.documents if documents is None else documents)
        runs: list[tuple[Plan, str, list[Block]]] = []
        plans: dict[str, tuple[str, Plan, dict[str, _Run]]] = {}
        for document in todo:
            key, results = self._cached(document)
            if results is not None:
                self._finish(document, key, results)
                if on_document:
                    on_document(document, results)
                continue
            p = plan(document)
            plans[document.rel] = (key, p, {})
            runs.append((p, "blocks_s", p.full_run))
            if p.chain:
                runs.append((p, "paste_s", p.chain_run))
        # Longest first (by lines of code run): a good split of the work over the workers.
        runs.sort(key=lambda run: -sum(b.code.count("\n") + 1 for b in run[2]))
        breaks = self._breaks()
        with ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="fenceproof") as pool:
            futures = {
                pool.submit(_execute, blocks, self.rt, self.timings, kind): (p, kind)
                for p, kind, blocks in runs
            }
            for future in as_completed(futures):
                p, kind = futures[future]
                key, _, done = plans[p.document.rel]
                done[kind] = future.result()
                if len(done) == (2 if p.chain else 1):
                    results = combine(p, self.findings, done["blocks_s"], done.get("paste_s"))
                    self._finish(p.document, key, results)
                    if on_document:
                        on_document(p.document, results)
        if self.jobs > 1 and self._breaks() > breaks:
            ran = {p.document.rel for p, _, blocks in runs if blocks}
            self._run_again([(d, plans[d.rel][0]) for d in todo if d.rel in ran])

    def _breaks(self) -> int:
        """How often a block broke what all documents share: the server's state (its databases, the engine's
        connection) or the fork server."""
        server, forkserver = self.rt.server, self.rt.forkserver
        return (server.damaged if server else 0) + (forkserver.deaths() if forkserver else 0)

    def _run_again(self, documents: list[tuple[Document, str]]) -> None:
        """A block broke the shared run while documents ran beside it: they may have failed because of it, or
        been blamed for it. Run each again (with its cache key), one at a time, so that every outcome is its
        document's own."""
        started = time.perf_counter()
        for document, key in documents:
            if key:
                self.cache.forget(key)
            results = verify_document(document, self.findings, self.rt, self.timings)
            self._finish(document, key, results)
            self.rerun.append(document.rel)
        self.timings.add("rerun_s", time.perf_counter() - started)

    def report(self) -> Report:
        """The report of what has run so far; call after the runtime is closed to count its stop time."""
        from fenceproof import budget

        timings = dict(self.timings.values)
        timings["postgres_start_s"] = self.rt.start_s
        timings["forkserver_start_s"] = self.rt.forkserver_s
        timings["servers_stop_s"] = self.rt.stop_s
        timings["wall_s"] = time.perf_counter() - self.started
        documents = [d.rel for d in self.corpus.documents if d.rel in self.results]
        results = [r for rel in documents for r in self.results[rel]]
        rows = [budget.row_json(r) for skill in self.corpus.skill_dirs for r in budget.measure(skill)]
        return Report(results, documents, self.rt.postgres(), timings, rows)


def verify(corpus: Corpus, rt: Runtime, on_document: DocumentDone | None = None) -> Report:
    """Verify every document of ``corpus`` with the servers of ``rt`` (one at a time, no cache)."""
    pipeline = Pipeline(corpus, rt)
    pipeline.run_all(on_document=on_document)
    return pipeline.report()
