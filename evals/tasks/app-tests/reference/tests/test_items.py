from httpx2 import AsyncClient


async def test_created_item_is_saved_and_readable(client: AsyncClient, count_items) -> None:
    created = await client.post("/items", params={"name": "lamp"})
    assert created.status_code == 201
    item_id = created.json()["id"]
    assert await count_items() == 1
    fetched = await client.get(f"/items/{item_id}")
    assert fetched.status_code == 200
    assert fetched.json() == {"id": item_id, "name": "lamp"}


async def test_unknown_item_is_404(client: AsyncClient) -> None:
    assert (await client.get("/items/999999")).status_code == 404


async def test_starts_from_an_empty_table(count_items) -> None:
    assert await count_items() == 0
