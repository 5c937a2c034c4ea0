"""The prices API on aiohttp: one ClientSession per process, kept on app.state by the lifespan."""

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from fastapi import FastAPI, Request


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    connector = aiohttp.TCPConnector(limit=4)
    async with aiohttp.ClientSession(
        os.environ["PRICES_URL"], connector=connector, timeout=aiohttp.ClientTimeout(total=5)
    ) as session:
        app.state.prices = session
        yield


app = FastAPI(lifespan=lifespan)


async def fetch_price(session: aiohttp.ClientSession, price_id: int) -> Any:
    async with session.get(f"/json/{price_id}") as response:
        response.raise_for_status()
        return await response.json()


@app.get("/prices")
async def prices(ids: str, request: Request) -> list[Any]:
    session: aiohttp.ClientSession = request.app.state.prices
    return list(await asyncio.gather(*(fetch_price(session, int(i)) for i in ids.split(","))))
