"""The prices API. PRICES_URL names the pricing service."""

import asyncio
import os
from typing import Any

import httpx2
from fastapi import FastAPI, Request

app = FastAPI()


@app.on_event("startup")
async def open_client() -> None:
    app.state.prices = httpx2.AsyncClient(
        base_url=os.environ["PRICES_URL"], limits=httpx2.Limits(max_connections=4), timeout=5.0
    )


@app.on_event("shutdown")
async def close_client() -> None:
    await app.state.prices.aclose()


async def fetch_price(client: httpx2.AsyncClient, price_id: int) -> Any:
    response = await client.get(f"/json/{price_id}")
    response.raise_for_status()
    return response.json()


@app.get("/prices")
async def prices(ids: str, request: Request) -> list[Any]:
    client = request.app.state.prices
    return list(await asyncio.gather(*(fetch_price(client, int(i)) for i in ids.split(","))))
