"""Grades the catalog queries: the right rows, no lazy loads, and as many statements for 10 authors as for 5."""

import asyncio

import app.db
from app.catalog import authors_with_books, books_with_authors
from conftest import authors


async def disposed(coro):
    try:
        return await coro
    finally:
        await app.db.engine.dispose()


def run(function):
    try:
        return asyncio.run(disposed(function()))
    except Exception as exc:
        raise AssertionError(f"{function.__name__}() raised {type(exc).__name__}: {exc}") from exc


def statements_for(function, counter) -> tuple[int, int]:
    """Statements one call runs with 5 authors, then with 10 (after a warm-up call)."""

    async def scenario() -> tuple[int, int]:
        await function()  # warm-up: the first connection runs setup queries of its own
        counts = []
        for size in (5, 10):
            await asyncio.to_thread(authors, size)
            before = counter.count
            await function()
            counts.append(counter.count - before)
        return counts[0], counts[1]

    return asyncio.run(disposed(scenario()))


def test_authors_with_books(statements_run):
    authors(4)
    got = run(authors_with_books)
    want = [
        {"name": "author 01", "books": ["book 01.1"]},
        {"name": "author 02", "books": ["book 02.1", "book 02.2"]},
        {"name": "author 03", "books": []},
        {"name": "author 04", "books": ["book 04.1"]},
    ]
    assert got == want, f"authors_with_books() returned {got}"


def test_authors_with_books_statements_do_not_grow(statements_run):
    five, ten = statements_for(authors_with_books, statements_run)
    assert five == ten, f"authors_with_books() ran {five} statements for 5 authors and {ten} for 10"


def test_books_with_authors(statements_run):
    authors(3)
    got = run(books_with_authors)
    want = [
        {"title": "book 01.1", "author": "author 01"},
        {"title": "book 02.1", "author": "author 02"},
        {"title": "book 02.2", "author": "author 02"},
    ]
    assert got == want, f"books_with_authors() returned {got}"
    five, ten = statements_for(books_with_authors, statements_run)
    assert five == ten, f"books_with_authors() ran {five} statements for 5 authors' books and {ten} for 10"
