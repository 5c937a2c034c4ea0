"""The request-id grader: the solver's app, and every log record written while it runs."""

import importlib
import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest


class Capture(logging.Handler):
    """A handler of ours on the root logger, as the deployment adds one."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def of(self, logger: str) -> list[logging.LogRecord]:
        return [r for r in self.records if r.name == logger]


@pytest.fixture
def app() -> Any:
    for name in [n for n in sys.modules if n == "app" or n.startswith("app.")]:
        del sys.modules[name]
    return importlib.import_module("app.main").app


@pytest.fixture
def logs(app: Any) -> Iterator[Capture]:
    root = logging.getLogger()
    capture, level = Capture(), root.level
    root.addHandler(capture)
    root.setLevel(logging.INFO)
    try:
        yield capture
    finally:
        root.removeHandler(capture)
        root.setLevel(level)
