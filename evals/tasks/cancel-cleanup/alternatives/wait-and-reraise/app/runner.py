"""Run jobs: tasks plus asyncio.wait with a deadline; cancellation is caught only to clean up and re-raise."""

import asyncio
import logging

import httpx2

from app.jobs import Job, Leases

logger = logging.getLogger(__name__)


async def run_job(job: Job, leases: Leases, http: httpx2.AsyncClient) -> str:
    await leases.acquire(job.id)
    try:
        response = await http.get(job.url)
    except asyncio.CancelledError:
        leases.release(job.id)
        raise
    except Exception:
        leases.release(job.id)
        logger.exception("job %s: request failed", job.id)
        return "failed"
    leases.release(job.id)
    if response.is_error:
        logger.error("job %s: upstream answered %s", job.id, response.status_code)
        return "failed"
    return response.text


async def run_jobs(
    jobs: list[Job], leases: Leases, http: httpx2.AsyncClient, job_timeout_s: float
) -> dict[int, str]:
    tasks = {job.id: asyncio.create_task(run_job(job, leases, http)) for job in jobs}
    if not tasks:
        return {}
    _, pending = await asyncio.wait(tasks.values(), timeout=job_timeout_s)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return {job_id: "timeout" if task in pending else task.result() for job_id, task in tasks.items()}
