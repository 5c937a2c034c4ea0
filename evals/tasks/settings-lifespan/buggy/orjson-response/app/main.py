"""The catalog service: settings from the environment (and .env), engine opened and closed by the lifespan."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import ORJSONResponse
from pydantic import BaseModel
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from app.models import Item


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env")

    database_url: str
    pool_size: int = 5


class ItemOut(BaseModel):
    id: int
    name: str


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    settings = Settings()  # read at startup, not at import
    engine = create_async_engine(settings.database_url, pool_size=settings.pool_size, pool_pre_ping=True)
    try:
        yield {"engine": engine, "sessions": async_sessionmaker(engine, expire_on_commit=False)}
    finally:
        await engine.dispose()


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.state.sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
app = FastAPI(lifespan=lifespan, default_response_class=ORJSONResponse)  # "faster JSON"


@app.get("/health")
async def health(request: Request) -> dict[str, str]:
    engine: AsyncEngine = request.state.engine
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
