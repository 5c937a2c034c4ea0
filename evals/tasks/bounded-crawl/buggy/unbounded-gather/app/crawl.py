"""Download pages and fingerprint them."""

import asyncio

import httpx2

from app.fingerprint import fingerprint


async def crawl(urls: list[str], limit: int = 5) -> dict[str, str]:
    async def one(client: httpx2.AsyncClient, url: str) -> tuple[str, str]:
        response = await client.get(url)
        response.raise_for_status()
        return url, await asyncio.to_thread(fingerprint, response.content)

    async with httpx2.AsyncClient(timeout=10.0) as client:
        pairs = await asyncio.gather(*(one(client, url) for url in urls))
    return dict(pairs)
