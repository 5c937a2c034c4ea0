from httpx2 import ASGITransport, AsyncClient

from app.main import app


async def test_created_item_is_readable() -> None:
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client:
        created = await client.post("/items", params={"name": "lamp"})
        assert created.status_code == 201
        fetched = await client.get(f"/items/{created.json()['id']}")
        assert fetched.json()["name"] == "lamp"
