"""Inventory gateway: one httpx2 client per app, opened in lifespan and closed at shutdown, with a bounded pool."""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx2
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

UPSTREAM_TIMEOUT = httpx2.Timeout(
    1.0, pool=5.0
)  # 1 s for the inventory to answer; waiting for a slot is not its fault
LIMITS = httpx2.Limits(max_connections=10, max_keepalive_connections=10)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with httpx2.AsyncClient(
        base_url=os.environ["UPSTREAM_URL"], timeout=UPSTREAM_TIMEOUT, limits=LIMITS
    ) as client:
        app.state.upstream = client
        yield


app = FastAPI(lifespan=lifespan)


def _problem(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"status": status, "detail": detail}, status, media_type="application/problem+json")


@app.get("/inventory/{path:path}")
async def inventory(path: str, request: Request) -> JSONResponse:
    client: httpx2.AsyncClient = request.app.state.upstream
    try:
        response = await client.get(f"/{path}", params=request.query_params)
    except httpx2.TimeoutException:
        return _problem(504, "the inventory did not answer in time")
    except httpx2.TransportError:
        return _problem(502, "the inventory could not be reached")
    if response.status_code >= 500:
        return _problem(502, f"the inventory answered {response.status_code}")
    return JSONResponse(response.json(), response.status_code)
