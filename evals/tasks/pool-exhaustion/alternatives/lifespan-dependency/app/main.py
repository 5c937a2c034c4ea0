"""The item API: engine made in the lifespan, sessions from a dependency that turns a pool timeout into 503."""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel
from sqlalchemy import exc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from app.models import Item

FLEET_PROCESSES = 3 * 4
SPARE_CONNECTIONS = 100 - 3 - 10
PER_PROCESS = SPARE_CONNECTIONS // FLEET_PROCESSES  # 7


class ItemOut(BaseModel):
    id: int
    name: str


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, object]]:
    engine = create_async_engine(
        os.environ["DATABASE_URL"],
        pool_size=PER_PROCESS,
        max_overflow=0,
        pool_timeout=0.3,
        pool_pre_ping=True,
    )
    try:
        yield {"sessions": async_sessionmaker(engine, expire_on_commit=False)}
    finally:
        await engine.dispose()


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.state.sessions() as session:
        try:
            await session.connection()  # check out now, so a full pool is answered here
        except exc.TimeoutError:
            raise HTTPException(503, "database busy", headers={"Retry-After": "1"}) from None
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
app = FastAPI(lifespan=lifespan)


@app.get("/items/{item_id}")
async def get_item(item_id: int, session: SessionDep) -> ItemOut:
    item = await session.get(Item, item_id)
    if item is None:
        raise HTTPException(404, "no such item")
    return ItemOut(id=item.id, name=item.name)
