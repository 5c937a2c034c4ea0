"""pytest collects the corpus: one item per fenced block, failing at its Markdown file and line.

Enabled with ``-p fenceproof.pytest_plugin`` (the repository's pytest configuration does this).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from fenceproof.corpus import Corpus, find_repo_root, load_corpus, skill_folders
from fenceproof.models import Block, BlockResult, ConfigError, Document, ServerUnavailable
from fenceproof.report import REPORT_PATH, merge_reports
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

    def finish(self, worker: str | None) -> None:
        """Stop the servers and write the report of the blocks that ran (the same report `verify` writes);
        a pytest-xdist worker writes its part, which the controller merges."""
        self.runtime.close()
        if self.pipeline is None or self.corpus is None or not self.pipeline.results:
            return
        target = self.corpus.root / (XDIST_DIR / f"{worker}.json" if worker else REPORT_PATH)
        self.pipeline.report().write(target)


XDIST_DIR = REPORT_PATH.parent / "xdist"


STATE = pytest.StashKey[CorpusState]()


class BlockFailed(Exception):
    pass


def _worker(config: pytest.Config) -> str | None:
    """The pytest-xdist worker id of this process (None in the controller or without xdist)."""
    workerinput = getattr(config, "workerinput", None)
    return str(workerinput["workerid"]) if workerinput else None


def _xdist_controller(config: pytest.Config) -> bool:
    return _worker(config) is None and bool(getattr(config.option, "numprocesses", None))


def pytest_configure(config: pytest.Config) -> None:
    config.stash[STATE] = CorpusState()
    if _xdist_controller(config):
        shutil.rmtree(config.rootpath / XDIST_DIR, ignore_errors=True)  # parts of an earlier run


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under ``pytest -n N --dist loadgroup`` a document's blocks stay on one worker (it runs them together)."""
    for item in items:
        if isinstance(item, BlockItem):
            item.add_marker(pytest.mark.xdist_group(item.block.rel))


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    state = config.stash.get(STATE, None)
    if state is not None and _worker(config):
        state.finish(_worker(config))  # before the controller merges the parts
    elif _xdist_controller(config):
        _merge_parts(config.rootpath)


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is not None and not _worker(config):
        state.finish(None)


def _merge_parts(root: Path) -> None:
    """The workers' reports as one (a document run by two workers keeps its first rows)."""
    parts = sorted((root / XDIST_DIR).glob("*.json"))
    if not parts:
        return
    merged = merge_reports(parts, tolerate_repeats=True)
    (root / REPORT_PATH).write_text(json.dumps(merged, indent=2) + "\n", "utf-8")
    shutil.rmtree(root / XDIST_DIR, ignore_errors=True)


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
