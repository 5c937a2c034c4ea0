"""Fetch the URLs one after another under a deadline (asyncio-concurrency-limits, Incorrect: no fan-out)."""

import asyncio
from typing import Any

import httpx2


async def fetch_all(client: httpx2.AsyncClient, urls: list[str], *, deadline: float) -> list[Any]:
    results = []
    async with asyncio.timeout(deadline):
        for url in urls:
            response = await client.get(url)
            response.raise_for_status()
            results.append(response.json())
    return results
