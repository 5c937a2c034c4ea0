"""The upstream-proxy grader: the solver's app, imported afresh with UPSTREAM_URL set to the loopback upstream."""

import importlib
import sys
from typing import Any

import pytest


@pytest.fixture
def app(upstream: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("UPSTREAM_URL", upstream.url)
    for name in [n for n in sys.modules if n == "app" or n.startswith("app.")]:
        del sys.modules[name]
    return importlib.import_module("app.main").app
