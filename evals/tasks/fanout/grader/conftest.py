"""Shared helpers of the fanout grader: the solver's fetch_all, and what is still running."""

import asyncio
import importlib
from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture
def fetch_all() -> Callable[..., Any]:
    module = importlib.import_module("app.fanout")
    return module.fetch_all


def still_running() -> list[asyncio.Task[Any]]:
    """Tasks of this loop, other than the test's own, that have not finished."""
    me = asyncio.current_task()
    return [t for t in asyncio.all_tasks() if t is not me and not t.done()]


def describe(tasks: list[asyncio.Task[Any]]) -> str:
    names = [t.get_coro().__qualname__ if t.get_coro() else t.get_name() for t in tasks]  # type: ignore[union-attr]
    return ", ".join(sorted(set(names)))
