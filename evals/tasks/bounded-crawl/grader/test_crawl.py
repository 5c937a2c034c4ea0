"""Grades app.crawl.crawl: results, the in-flight limit, and an event loop that keeps running."""

import asyncio
import hashlib
import json
import time

from app.crawl import crawl


def peak_in_flight(served: list) -> int:
    """The most requests the upstream was answering at the same moment."""
    edges = sorted([(r.start, 1) for r in served] + [(r.end or float("inf"), -1) for r in served])
    now = peak = 0
    for _, step in edges:
        now += step
        peak = max(peak, now)
    return peak


def test_fingerprints_every_page(upstream):
    urls = [f"{upstream.url}/json/{n}" for n in range(4)]
    got = asyncio.run(crawl(urls, limit=4))
    want = {url: hashlib.sha256(json.dumps({"n": n}).encode()).hexdigest() for n, url in enumerate(urls)}
    wrong = sorted(url.rsplit("/", 1)[1] for url in want if got.get(url) != want[url])
    assert not wrong and len(got) == 4, (
        f"crawl returned {len(got)} entries for 4 URLs; wrong or missing for pages {wrong}"
    )


def test_at_most_limit_requests_in_flight(upstream):
    urls = [f"{upstream.url}/slow/0.2?page={n}" for n in range(8)]
    asyncio.run(crawl(urls, limit=2))
    served = upstream.served("/slow/")
    peak = peak_in_flight(served)
    assert len(served) == 8, f"the upstream saw {len(served)} requests for 8 URLs"
    assert peak <= 2, f"{peak} requests were in flight at once with limit=2"
    assert peak == 2, "requests ran one at a time with limit=2"


def test_event_loop_keeps_running_during_a_crawl(upstream):
    urls = [f"{upstream.url}/json/{n}" for n in range(4)]

    async def scenario() -> float:
        ticks: list[float] = [time.monotonic()]

        async def heartbeat() -> None:
            while True:
                await asyncio.sleep(0.02)
                ticks.append(time.monotonic())

        beat = asyncio.create_task(heartbeat())
        try:
            await crawl(urls, limit=4)
            ticks.append(time.monotonic())  # the last stretch counts too, if the loop was stuck till the end
            await asyncio.sleep(0.05)
        finally:
            beat.cancel()
        return max(b - a for a, b in zip(ticks, ticks[1:], strict=False))

    gap = asyncio.run(scenario())
    assert gap < 0.4, (
        f"the event loop stalled for {gap:.2f} s during a crawl of 4 pages (heartbeat every 0.02 s)"
    )
