"""Run jobs."""

import httpx2

from app.jobs import Job, Leases


async def run_job(job: Job, leases: Leases, http: httpx2.AsyncClient) -> str:
    """Hold a lease for job.id, GET job.url and return the body text, or "failed"."""
    raise NotImplementedError


async def run_jobs(
    jobs: list[Job], leases: Leases, http: httpx2.AsyncClient, job_timeout_s: float
) -> dict[int, str]:
    """Run the jobs concurrently; return {job.id: result}, "timeout" for a job slower than job_timeout_s."""
    raise NotImplementedError
