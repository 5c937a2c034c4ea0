"""A TaskGroup under a deadline that returns what it has when cancelled
(asyncio-cancellation, Incorrect: CancelledError caught and not re-raised)."""

import asyncio
import logging
from typing import Any

import httpx2

log = logging.getLogger(__name__)


async def _fetch(client: httpx2.AsyncClient, url: str) -> Any:
    response = await client.get(url)
    response.raise_for_status()
    return response.json()


async def fetch_all(client: httpx2.AsyncClient, urls: list[str], *, deadline: float) -> list[Any]:
    tasks: list[asyncio.Task[Any]] = []
    try:
        async with asyncio.timeout(deadline):
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(_fetch(client, url)) for url in urls]
    except asyncio.CancelledError:
        log.warning("fetch_all cancelled; returning partial results")
        return [t.result() for t in tasks if t.done() and not t.cancelled() and t.exception() is None]
    return [task.result() for task in tasks]
