"""The catalog service."""

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException
from pydantic import BaseModel
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from app.models import Item


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env")

    database_url: str
    pool_size: int = 5


class ItemOut(BaseModel):
    id: int
    name: str


settings = Settings()
engine = create_async_engine(settings.database_url, pool_size=settings.pool_size, pool_pre_ping=True)
Session = async_sessionmaker(engine, expire_on_commit=False)


async def get_session() -> AsyncIterator[AsyncSession]:
    async with Session() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
app = FastAPI()


@app.get("/health")
async def health() -> dict[str, str]:
    try:
        async with asyncio.timeout(2), engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except (OSError, TimeoutError, DBAPIError) as exc:
        raise HTTPException(503, "database unavailable") from exc
    return {"database": "ok"}


@app.get("/items/{item_id}")
async def get_item(item_id: int, session: SessionDep) -> ItemOut:
    item = await session.get(Item, item_id)
    if item is None:
        raise HTTPException(404, "no such item")
    return ItemOut(id=item.id, name=item.name)
