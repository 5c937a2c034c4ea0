import os

from httpx2 import ASGITransport, AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.main import app

engine = create_async_engine(os.environ["DATABASE_URL"])  # shared by every test, each on its own loop


async def count_items() -> int:
    async with engine.connect() as conn:
        return await conn.scalar(text("SELECT count(*) FROM items"))


async def test_created_item_is_saved() -> None:
    before = await count_items()
    async with app.router.lifespan_context(app):
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client:
            assert (await client.post("/items", params={"name": "lamp"})).status_code == 201
    assert await count_items() == before + 1


async def test_unknown_item_is_404() -> None:
    async with app.router.lifespan_context(app):
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client:
            assert (await client.get("/items/999999")).status_code == 404
    assert await count_items() >= 0
