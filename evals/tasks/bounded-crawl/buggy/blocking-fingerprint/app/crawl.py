"""Download pages and fingerprint them."""

import asyncio

import httpx2

from app.fingerprint import fingerprint


async def crawl(urls: list[str], limit: int = 5) -> dict[str, str]:
    slots = asyncio.Semaphore(limit)
    results: dict[str, str] = {}

    async def one(client: httpx2.AsyncClient, url: str) -> None:
        async with slots:
            response = await client.get(url)
            response.raise_for_status()
        results[url] = fingerprint(response.content)

    async with httpx2.AsyncClient(timeout=10.0) as client, asyncio.TaskGroup() as tg:
        for url in urls:
            tg.create_task(one(client, url))
    return results
