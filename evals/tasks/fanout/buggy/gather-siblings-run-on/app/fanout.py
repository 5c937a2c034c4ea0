"""Fetch many URLs at once with gather (asyncio-taskgroup, Incorrect: siblings keep running)."""

import asyncio
from typing import Any

import httpx2


async def _fetch(client: httpx2.AsyncClient, url: str) -> Any:
    response = await client.get(url)
    response.raise_for_status()
    return response.json()


async def fetch_all(client: httpx2.AsyncClient, urls: list[str], *, deadline: float) -> list[Any]:
    return await asyncio.wait_for(asyncio.gather(*(_fetch(client, url) for url in urls)), deadline)
