"""pytest collects the corpus: one item per fenced block, failing at its Markdown file and line.

Enabled with ``-p fenceproof.pytest_plugin`` (the repository's pytest configuration does this).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fenceproof.corpus import Corpus, find_repo_root, load_corpus, skill_folders
from fenceproof.models import Block, BlockResult, ConfigError, Document, ServerUnavailable
from fenceproof.report import REPORT_PATH
from fenceproof.verify import Pipeline, Runtime


class CorpusState:
    """The corpus and the one pipeline that verifies it, made once per session; documents run on first need."""

    def __init__(self) -> None:
        self.corpus: Corpus | None = None
        self.runtime = Runtime()
        self.pipeline: Pipeline | None = None

    def document(self, path: Path) -> Document:
        if self.corpus is None:
            self.corpus = load_corpus(path.parent)
        for document in self.corpus.documents:
            if document.path.resolve() == path.resolve():
                return document
        raise ConfigError(str(path), 1, "not a document of the corpus")

    def result(self, block: Block) -> BlockResult:
        assert self.corpus is not None
        if self.pipeline is None:
            self.pipeline = Pipeline(self.corpus, self.runtime)
        document = next(d for d in self.corpus.documents if d.rel == block.rel)
        return next(r for r in self.pipeline.document(document) if r.block.line == block.line)

    def finish(self) -> None:
        """Stop the servers and write the report of the blocks that ran (the same report `verify` writes)."""
        self.runtime.close()
        if self.pipeline is not None and self.corpus is not None and self.pipeline.results:
            self.pipeline.report().write(self.corpus.root / REPORT_PATH)


STATE = pytest.StashKey[CorpusState]()


class BlockFailed(Exception):
    pass


def pytest_configure(config: pytest.Config) -> None:
    config.stash[STATE] = CorpusState()


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is not None:
        state.finish()


def _in_skill(file_path: Path) -> bool:
    try:
        root = find_repo_root(file_path.parent)
    except ConfigError:
        return False
    return any((root / skill).resolve() in file_path.resolve().parents for skill in skill_folders(root))


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
