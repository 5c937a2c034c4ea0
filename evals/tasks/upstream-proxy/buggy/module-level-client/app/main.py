"""Inventory gateway with a module-level httpx2 client that is never closed (pooling-http, Incorrect:
bound to the first event loop, and its connections outlive the app)."""

import os

import httpx2
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

client = httpx2.AsyncClient(
    base_url=os.environ["UPSTREAM_URL"], timeout=1.0, limits=httpx2.Limits(max_connections=10)
)
app = FastAPI()


@app.get("/inventory/{path:path}")
async def inventory(path: str, request: Request) -> JSONResponse:
    try:
        response = await client.get(f"/{path}", params=request.query_params)
    except httpx2.TimeoutException:
        return JSONResponse({"detail": "timeout"}, 504)
    except httpx2.TransportError:
        return JSONResponse({"detail": "unreachable"}, 502)
    if response.status_code >= 500:
        return JSONResponse({"detail": f"upstream {response.status_code}"}, 502)
    return JSONResponse(response.json(), response.status_code)
