"""Fetch with asyncio.wait and explicit cleanup: the first failure, the deadline or a cancellation of the
caller cancels every pending task and waits for it before anything propagates."""

import asyncio
import time
from typing import Any

import httpx2


async def _get_json(client: httpx2.AsyncClient, url: str) -> Any:
    response = await client.get(url)
    if response.status_code >= 400:
        raise httpx2.HTTPStatusError(
            f"{url}: {response.status_code}", request=response.request, response=response
        )
    return response.json()


async def _cancel_all(tasks: list[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.wait(tasks)  # every task has finished when this returns


async def fetch_all(client: httpx2.AsyncClient, urls: list[str], *, deadline: float) -> list[Any]:
    if not urls:
        return []
    tasks = [asyncio.ensure_future(_get_json(client, url)) for url in urls]
    ends_at = time.monotonic() + deadline
    pending = set(tasks)
    try:
        while pending:
            left = ends_at - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"fetch_all: {len(pending)} requests still pending after {deadline} s")
            done, pending = await asyncio.wait(pending, timeout=left, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                if task.exception() is not None:
                    raise task.exception()
    except BaseException:
        await _cancel_all(tasks)
        raise
    return [task.result() for task in tasks]
