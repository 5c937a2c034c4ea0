"""Inventory gateway on one aiohttp ClientSession per app (lifespan state), a 10-connection TCPConnector and a
1 s socket-read timeout; waiting for a free connection is bounded separately."""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypedDict

import aiohttp
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse


class State(TypedDict):
    session: aiohttp.ClientSession


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[State]:
    connector = aiohttp.TCPConnector(limit=10, limit_per_host=10)
    timeout = aiohttp.ClientTimeout(total=None, connect=2, sock_read=1.0)
    async with aiohttp.ClientSession(
        os.environ["UPSTREAM_URL"], connector=connector, timeout=timeout
    ) as session:
        yield {"session": session}


app = FastAPI(lifespan=lifespan)


@app.get("/inventory/{path:path}")
async def inventory(path: str, request: Request) -> JSONResponse:
    session: aiohttp.ClientSession = request.state.session
    try:
        async with session.get(f"/{path}", params=dict(request.query_params)) as response:
            status = response.status
            body: Any = await response.json(content_type=None) if status < 500 else None
    except TimeoutError:
        return JSONResponse({"detail": "inventory timed out"}, 504)
    except aiohttp.ClientError:
        return JSONResponse({"detail": "inventory unreachable"}, 502)
    if status >= 500:
        return JSONResponse({"detail": f"inventory answered {status}"}, 502)
    return JSONResponse(body, status)
