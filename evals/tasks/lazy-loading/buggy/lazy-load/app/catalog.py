"""Catalog queries."""

from typing import Any

from sqlalchemy import select

from app.db import Session
from app.models import Author, Book


async def authors_with_books() -> list[dict[str, Any]]:
    async with Session() as session:
        authors = await session.scalars(select(Author).order_by(Author.name))
        return [{"name": a.name, "books": sorted(b.title for b in a.books)} for a in authors]


async def books_with_authors() -> list[dict[str, Any]]:
    async with Session() as session:
        books = await session.scalars(select(Book).order_by(Book.title))
        return [{"title": b.title, "author": b.author.name} for b in books]
