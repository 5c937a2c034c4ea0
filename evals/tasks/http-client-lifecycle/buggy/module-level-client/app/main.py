"""The prices API. PRICES_URL names the pricing service."""

import asyncio
import os
from typing import Any

import httpx2
from fastapi import FastAPI

client = httpx2.AsyncClient(
    base_url=os.environ["PRICES_URL"], limits=httpx2.Limits(max_connections=4), timeout=5.0
)
app = FastAPI()


async def fetch_price(price_id: int) -> Any:
    response = await client.get(f"/json/{price_id}")
    response.raise_for_status()
    return response.json()


@app.get("/prices")
async def prices(ids: str) -> list[Any]:
    return list(await asyncio.gather(*(fetch_price(int(i)) for i in ids.split(","))))
