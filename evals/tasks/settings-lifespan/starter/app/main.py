"""The catalog service."""

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from app.models import Item

engine = create_async_engine("postgresql+asyncpg://catalog:catalog@localhost:5432/catalog")
Session = async_sessionmaker(engine, expire_on_commit=False)
app = FastAPI()


class ItemOut(BaseModel):
    id: int
    name: str


@app.get("/items/{item_id}")
async def get_item(item_id: int) -> ItemOut:
    async with Session() as session:
        item = await session.get(Item, item_id)
    if item is None:
        raise HTTPException(404, "no such item")
    return ItemOut(id=item.id, name=item.name)
