"""Inventory gateway that opens an httpx2 client per request (pooling-http, Incorrect: a connection per call,
and Limits that bound nothing)."""

import os

import httpx2
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

app = FastAPI()


@app.get("/inventory/{path:path}")
async def inventory(path: str, request: Request) -> JSONResponse:
    limits = httpx2.Limits(max_connections=10)
    async with httpx2.AsyncClient(base_url=os.environ["UPSTREAM_URL"], timeout=1.0, limits=limits) as client:
        try:
            response = await client.get(f"/{path}", params=request.query_params)
        except httpx2.TimeoutException:
            return JSONResponse({"detail": "timeout"}, 504)
        except httpx2.TransportError:
            return JSONResponse({"detail": "unreachable"}, 502)
    if response.status_code >= 500:
        return JSONResponse({"detail": f"upstream {response.status_code}"}, 502)
    return JSONResponse(response.json(), response.status_code)
