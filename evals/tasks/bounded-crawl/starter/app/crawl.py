"""Download pages and fingerprint them."""


async def crawl(urls: list[str], limit: int = 5) -> dict[str, str]:
    """Fetch every URL, at most ``limit`` at a time, and return {url: fingerprint(body)}."""
    raise NotImplementedError
