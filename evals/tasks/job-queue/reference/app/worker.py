"""The job worker: a job stays locked by its worker's open transaction until it is marked done."""

from collections.abc import Awaitable, Callable

from sqlalchemy import select

from app.db import Session
from app.models import Job

Handler = Callable[[int, str], Awaitable[None]]


async def run_worker(handle: Handler) -> int:
    """Handle pending jobs one at a time until none is left; return how many this worker handled."""
    handled = 0
    while True:
        async with Session.begin() as session:  # commit marks it done; a crash rolls back and frees it
            job = await session.scalar(
                select(Job)
                .where(Job.status == "pending")
                .order_by(Job.id)
                .limit(1)
                .with_for_update(skip_locked=True)  # rows other workers hold are passed over, not waited for
            )
            if job is None:
                return handled
            await handle(job.id, job.payload)
            job.status = "done"
        handled += 1
