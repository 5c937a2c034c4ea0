"""Fetch many URLs at once: a TaskGroup under one deadline."""

import asyncio
from typing import Any

import httpx2


async def _fetch(client: httpx2.AsyncClient, url: str) -> Any:
    response = await client.get(url)
    response.raise_for_status()
    return response.json()


async def fetch_all(client: httpx2.AsyncClient, urls: list[str], *, deadline: float) -> list[Any]:
    async with asyncio.timeout(deadline):
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(_fetch(client, url)) for url in urls]
    return [task.result() for task in tasks]
