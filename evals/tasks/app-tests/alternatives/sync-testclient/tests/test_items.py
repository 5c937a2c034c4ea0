import psycopg
from fastapi.testclient import TestClient


def test_post_saves_the_item(client: TestClient, db: psycopg.Connection) -> None:
    response = client.post("/items", params={"name": "desk"})
    assert response.status_code == 201
    row = db.execute("SELECT name FROM items WHERE id = %s", (response.json()["id"],)).fetchone()
    assert row == ("desk",)


def test_get_returns_the_item_or_404(client: TestClient) -> None:
    item_id = client.post("/items", params={"name": "chair"}).json()["id"]
    assert client.get(f"/items/{item_id}").json() == {"id": item_id, "name": "chair"}
    assert client.get(f"/items/{item_id + 1000}").status_code == 404
