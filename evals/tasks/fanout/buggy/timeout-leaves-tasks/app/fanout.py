"""Fetch with asyncio.wait(timeout=...) and give up at the deadline without cancelling what is pending
(asyncio-cancellation, Incorrect: tasks left running after a timeout)."""

import asyncio
from typing import Any

import httpx2


async def _fetch(client: httpx2.AsyncClient, url: str) -> Any:
    response = await client.get(url)
    response.raise_for_status()
    return response.json()


async def fetch_all(client: httpx2.AsyncClient, urls: list[str], *, deadline: float) -> list[Any]:
    tasks = [asyncio.create_task(_fetch(client, url)) for url in urls]
    done, pending = await asyncio.wait(tasks, timeout=deadline, return_when=asyncio.FIRST_EXCEPTION)
    for task in done:
        if task.exception() is not None:
            for other in pending:
                other.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            raise task.exception()
    if pending:
        raise TimeoutError(f"{len(pending)} of {len(urls)} requests not back after {deadline} s")
    return [task.result() for task in tasks]
