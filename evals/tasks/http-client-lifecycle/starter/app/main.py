"""The prices API. PRICES_URL names the pricing service."""

import asyncio
import os
from typing import Any

import httpx2
from fastapi import FastAPI

app = FastAPI()


async def fetch_price(price_id: int) -> Any:
    async with httpx2.AsyncClient(base_url=os.environ["PRICES_URL"], timeout=5.0) as client:
        response = await client.get(f"/json/{price_id}")
        response.raise_for_status()
        return response.json()


@app.get("/prices")
async def prices(ids: str) -> list[Any]:
    return list(await asyncio.gather(*(fetch_price(int(i)) for i in ids.split(","))))
