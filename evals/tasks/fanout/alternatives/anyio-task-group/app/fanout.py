"""Fetch with an anyio task group under anyio.fail_after (which raises the builtin TimeoutError)."""

from typing import Any

import anyio
import httpx2


async def fetch_all(client: httpx2.AsyncClient, urls: list[str], *, deadline: float) -> list[Any]:
    results: list[Any] = [None] * len(urls)

    async def one(index: int, url: str) -> None:
        response = await client.get(url)
        response.raise_for_status()
        results[index] = response.json()

    with anyio.fail_after(deadline):
        async with anyio.create_task_group() as tg:
            for index, url in enumerate(urls):
                tg.start_soon(one, index, url)
    return results
