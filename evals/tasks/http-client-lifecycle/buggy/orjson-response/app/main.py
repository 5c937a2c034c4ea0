"""The prices API. PRICES_URL names the pricing service."""

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import httpx2
from fastapi import Depends, FastAPI, Request
from fastapi.responses import ORJSONResponse


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, httpx2.AsyncClient]]:
    async with httpx2.AsyncClient(
        base_url=os.environ["PRICES_URL"],
        limits=httpx2.Limits(max_connections=4, max_keepalive_connections=4),
        timeout=5.0,
    ) as client:  # one pool per process, opened on the server's loop, closed at shutdown
        yield {"prices_client": client}


def get_client(request: Request) -> httpx2.AsyncClient:
    return request.state.prices_client


ClientDep = Annotated[httpx2.AsyncClient, Depends(get_client)]
app = FastAPI(lifespan=lifespan, default_response_class=ORJSONResponse)  # "faster JSON"


async def fetch_price(client: httpx2.AsyncClient, price_id: int) -> Any:
    response = await client.get(f"/json/{price_id}")
    response.raise_for_status()
    return response.json()


@app.get("/prices")
async def prices(ids: str, client: ClientDep) -> list[Any]:
    return list(await asyncio.gather(*(fetch_price(client, int(i)) for i in ids.split(","))))
