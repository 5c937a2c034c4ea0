"""Jobs and the lease service (given; do not change)."""

import asyncio
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Job:
    id: int
    url: str


@dataclass
class Leases:
    """Who holds a lease right now. A running job holds one; it must be released afterwards."""

    held: set[int] = field(default_factory=set)

    async def acquire(self, job_id: int) -> None:
        await asyncio.sleep(0)  # a round trip to the lease service
        self.held.add(job_id)

    def release(self, job_id: int) -> None:
        self.held.discard(job_id)
