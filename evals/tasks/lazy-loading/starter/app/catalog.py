"""Catalog queries."""

from typing import Any


async def authors_with_books() -> list[dict[str, Any]]:
    raise NotImplementedError


async def books_with_authors() -> list[dict[str, Any]]:
    raise NotImplementedError
