"""The short forms the indexes use: key phrases stay verbatim parts of the error, shortened text stays short."""

from __future__ import annotations

import pytest
from conftest import SKILL_DIR

from fenceproof.corpus import read_frontmatter
from fenceproof.index import rule_files
from fenceproof.index_text import KEY_PHRASE_MAX_CHARS, code, key_phrase, plain_error, shorten

ERRORS = [
    str(e)
    for p in rule_files(SKILL_DIR)
    for e in read_frontmatter(p.read_text(encoding="utf-8"), p.name)["errors"]  # type: ignore[attr-defined]
]


@pytest.mark.parametrize("error", ERRORS, ids=[e[:40] for e in ERRORS])
def test_key_phrase_of_each_rule_error_is_short_and_printed_verbatim(error: str) -> None:
    phrase = key_phrase(error)
    if phrase is not None:
        assert phrase in " ".join(error.split())
        assert 0 < len(phrase) <= KEY_PHRASE_MAX_CHARS


@pytest.mark.parametrize(
    ("error", "phrase"),
    [
        ("ASYNC251 Async functions should not call `time.sleep`", "ASYNC251"),
        ("RuntimeError: Event loop is closed", "Event loop is closed"),
        (
            "sqlalchemy.exc.TimeoutError: QueuePool limit of size 5 overflow 10 reached, connection timed out",
            "QueuePool limit of size",
        ),
        (
            'fastapi.exceptions.DependencyScopeError: The dependency "get_x" has a scope',
            "DependencyScopeError",
        ),
        ("asyncio.exceptions.CancelledError", "CancelledError"),
        ("OSError: [Errno 24] Too many open files", "Too many open files"),
        (
            "sqlalchemy.exc.DBAPIError: (sqlalchemy.dialects.postgresql.asyncpg.Error) sorry, too many clients "
            "already",
            "too many clients already",
        ),
        (
            "Cancel 1 running task(s), timeout graceful shutdown exceeded",
            "timeout graceful shutdown exceeded",
        ),
        ("ERROR:    Exception in ASGI application", "Exception in ASGI application"),
        ('{"detail":"Not Found"}', None),
        (
            "RuntimeError: asyncio.run() cannot be called from a running event loop",
            "asyncio.run() cannot be called",
        ),
        (
            "DeprecationWarning: on_event is deprecated, use lifespan event handlers instead.",
            "on_event is deprecated",
        ),
        ("KeyError: 'foo'", None),
        ("ValueError: 3", None),
    ],
)
def test_key_phrase_picks_the_words_that_name_the_failure(error: str, phrase: str | None) -> None:
    assert key_phrase(error) == phrase


def test_plain_error_drops_module_paths_wrapped_classes_and_the_background_link() -> None:
    error = (
        "sqlalchemy.exc.InterfaceError: (sqlalchemy.dialects.postgresql.asyncpg.InterfaceError) connection is "
        "closed (Background on this error at: https://sqlalche.me/e/21/rvf5)"
    )
    assert plain_error(error) == "InterfaceError: connection is closed"


def test_shorten_ends_at_a_clause_or_word_and_marks_the_cut() -> None:
    text = "requests fail with QueuePool limit reached under load or when a slow call holds connections"
    assert shorten(text, 200) == text
    short = shorten(text, 70)
    assert short == "requests fail with QueuePool limit reached under load…"
    assert len(shorten(text, 30)) <= 30 and shorten(text, 30).endswith("…")
    assert shorten("first clause; second clause is long", 20) == "first clause"


def test_code_survives_backticks() -> None:
    assert code("plain") == "`plain`"
    assert code("call `time.sleep`") == "`` call `time.sleep` ``"
