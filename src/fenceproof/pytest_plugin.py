"""pytest collects the corpus: one item per fenced block, failing at its Markdown file and line.

Enabled with ``-p fenceproof.pytest_plugin`` (the repository's pytest configuration does this).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fenceproof.corpus import SKILL_DIR, Corpus, find_repo_root, load_corpus
from fenceproof.lint import Finding, lint_documents
from fenceproof.models import Block, BlockResult, ConfigError, Document, ServerUnavailable
from fenceproof.verify import Runtime, verify_document


class CorpusState:
    """The corpus, its lint findings, the servers and each document's results, made once per session."""

    def __init__(self) -> None:
        self.corpus: Corpus | None = None
        self.findings: dict[tuple[str, int], list[Finding]] | None = None
        self.runtime = Runtime()
        self.results: dict[str, dict[int, BlockResult]] = {}
        self.timings: dict[str, float] = {}

    def document(self, path: Path) -> Document:
        if self.corpus is None:
            self.corpus = load_corpus(path.parent)
        for document in self.corpus.documents:
            if document.path.resolve() == path.resolve():
                return document
        raise ConfigError(str(path), 1, "not a document of the corpus")

    def result(self, block: Block) -> BlockResult:
        assert self.corpus is not None
        if block.rel not in self.results:
            if self.findings is None:
                self.findings = lint_documents(self.corpus.documents)
            document = next(d for d in self.corpus.documents if d.rel == block.rel)
            done = verify_document(document, self.findings, self.runtime, self.timings)
            self.results[block.rel] = {r.block.line: r for r in done}
        return self.results[block.rel][block.line]


STATE = pytest.StashKey[CorpusState]()


class BlockFailed(Exception):
    pass


def pytest_configure(config: pytest.Config) -> None:
    config.stash[STATE] = CorpusState()


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is not None:
        state.runtime.close()


def _in_skill(file_path: Path) -> bool:
    try:
        root = find_repo_root(file_path.parent)
    except ConfigError:
        return False
    return (root / SKILL_DIR).resolve() in file_path.resolve().parents


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix == ".md" and _in_skill(file_path):
        return MarkdownFile.from_parent(parent, path=file_path)
    return None


class MarkdownFile(pytest.File):
    def collect(self):  # type: ignore[no-untyped-def]
        try:
            document = self.config.stash[STATE].document(self.path)
        except ConfigError as error:
            raise self.CollectError(str(error)) from None
        for block in document.blocks:
            yield BlockItem.from_parent(self, name=f"L{block.line}[{block.lang}]", block=block)


class BlockItem(pytest.Item):
    def __init__(self, *, block: Block, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(**kwargs)
        self.block = block

    def runtest(self) -> None:
        try:
            result = self.config.stash[STATE].result(self.block)
        except ServerUnavailable as error:
            pytest.fail(f"{self.block.where}: no PostgreSQL to run it on: {error}", pytrace=False)
        self.user_properties.append(("outcome", result.outcome))
        if result.outcome == "failed":
            raise BlockFailed(f"{self.block.where}: {result.message}")
        if result.outcome == "skipped":
            # Reported at the block's Markdown line, not at this line of the plugin.
            raise pytest.skip.Exception(str(result.message), _use_item_location=True)

    def repr_failure(self, excinfo, style=None):  # type: ignore[no-untyped-def]
        if isinstance(excinfo.value, BlockFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self):  # type: ignore[no-untyped-def]
        return self.path, self.block.line - 1, f"{self.block.where} [{self.block.lang}]"
