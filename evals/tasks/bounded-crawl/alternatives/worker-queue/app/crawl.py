"""Download pages and fingerprint them: a fixed crew of workers drains a queue."""

import asyncio
from concurrent.futures import ThreadPoolExecutor

import httpx2

from app.fingerprint import fingerprint


async def crawl(urls: list[str], limit: int = 5) -> dict[str, str]:
    queue: asyncio.Queue[str] = asyncio.Queue()
    for url in urls:
        queue.put_nowait(url)
    results: dict[str, str] = {}
    loop = asyncio.get_running_loop()

    async def worker(client: httpx2.AsyncClient, pool: ThreadPoolExecutor) -> None:
        while True:
            try:
                url = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            response = await client.get(url)
            response.raise_for_status()
            results[url] = await loop.run_in_executor(pool, fingerprint, response.content)

    pool = ThreadPoolExecutor(max_workers=limit)
    try:
        async with httpx2.AsyncClient(limits=httpx2.Limits(max_connections=limit)) as client:
            await asyncio.gather(*(worker(client, pool) for _ in range(min(limit, len(urls)))))
    finally:
        await asyncio.to_thread(pool.shutdown)  # joining the threads blocks: not on the loop
    return results
