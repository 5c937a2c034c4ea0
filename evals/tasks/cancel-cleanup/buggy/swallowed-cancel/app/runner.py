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
    except BaseException:  # "nothing may crash the runner"
        logger.exception("job %s failed", job.id)
        return "failed"
    finally:
        leases.release(job.id)


async def run_jobs(
    jobs: list[Job], leases: Leases, http: httpx2.AsyncClient, job_timeout_s: float
) -> dict[int, str]:
    results: dict[int, str] = {}

    async def one(job: Job) -> None:
        try:
            async with asyncio.timeout(job_timeout_s):
                results[job.id] = await run_job(job, leases, http)
        except TimeoutError:
            results[job.id] = "timeout"

    async with asyncio.TaskGroup() as tg:
        for job in jobs:
            tg.create_task(one(job))
    return results
