"""The job worker."""

from collections.abc import Awaitable, Callable

Handler = Callable[[int, str], Awaitable[None]]


async def run_worker(handle: Handler) -> int:
    """Handle pending jobs one at a time until none is left; return how many this worker handled."""
    raise NotImplementedError
