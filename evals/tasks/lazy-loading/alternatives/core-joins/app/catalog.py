"""Catalog queries as one Core join each, grouped in Python."""

from typing import Any

from sqlalchemy import select

from app.db import engine
from app.models import Author, Book


async def authors_with_books() -> list[dict[str, Any]]:
    query = (
        select(Author.id, Author.name, Book.title)
        .outerjoin(Book, Book.author_id == Author.id)
        .order_by(Author.name, Author.id, Book.title)
    )
    out: dict[int, dict[str, Any]] = {}
    async with engine.connect() as conn:
        for author_id, name, title in await conn.execute(query):
            entry = out.setdefault(author_id, {"name": name, "books": []})
            if title is not None:
                entry["books"].append(title)
    return list(out.values())


async def books_with_authors() -> list[dict[str, Any]]:
    query = select(Book.title, Author.name).join(Author, Book.author_id == Author.id).order_by(Book.title)
    async with engine.connect() as conn:
        return [{"title": title, "author": name} for title, name in await conn.execute(query)]
