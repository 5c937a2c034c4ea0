"""The job worker."""

from collections.abc import Awaitable, Callable

from sqlalchemy import select

from app.db import Session
from app.models import Job

Handler = Callable[[int, str], Awaitable[None]]


async def run_worker(handle: Handler) -> int:
    handled = 0
    while True:
        async with Session.begin() as session:
            job = await session.scalar(select(Job).where(Job.status == "pending").order_by(Job.id).limit(1))
            if job is None:
                return handled
            await handle(job.id, job.payload)
            job.status = "done"
        handled += 1
