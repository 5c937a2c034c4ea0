"""One event loop for the whole run; the app with its lifespan; an empty items table per test."""

import os
from collections.abc import AsyncIterator

import pytest
from app.main import app
from httpx2 import ASGITransport, AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


@pytest.fixture(scope="session")
async def engine() -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(os.environ["DATABASE_URL"])
    yield engine
    await engine.dispose()


@pytest.fixture(autouse=True)
async def empty_items(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("TRUNCATE items RESTART IDENTITY"))


@pytest.fixture
async def client() -> AsyncIterator[AsyncClient]:
    async with app.router.lifespan_context(app):  # ASGITransport alone never runs the lifespan
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client:
            yield client


@pytest.fixture
async def count_items(engine: AsyncEngine):
    async def count() -> int:
        async with engine.connect() as conn:
            return await conn.scalar(text("SELECT count(*) FROM items"))

    return count
