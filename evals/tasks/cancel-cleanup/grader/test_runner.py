"""Grades app.runner: results and failures, the per-job timeout, and cancellation that propagates."""

import asyncio
import time

import httpx2
from app.jobs import Job, Leases
from app.runner import run_job, run_jobs


async def wait_until(condition, seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.01)
    return condition()


def hang_closed(upstream) -> bool:
    hang = upstream.served("/hang")
    return bool(hang) and hang[0].client_gone


def test_results_and_failed_jobs(upstream):
    jobs = [
        Job(1, f"{upstream.url}/json/1"),
        Job(2, f"{upstream.url}/status/500"),
        Job(3, f"{upstream.url}/drop"),
    ]
    leases = Leases()

    async def scenario() -> dict[int, str]:
        async with httpx2.AsyncClient(timeout=5.0) as http:
            return await run_jobs(jobs, leases, http, job_timeout_s=3.0)

    got = asyncio.run(scenario())
    assert got == {1: '{"n": 1}', 2: "failed", 3: "failed"}, f"run_jobs returned {got}"
    assert not leases.held, f"leases still held after the batch: {sorted(leases.held)}"


def test_slow_job_gets_timeout_and_the_others_keep_results(upstream):
    jobs = [
        Job(1, f"{upstream.url}/json/1"),
        Job(2, f"{upstream.url}/hang"),
        Job(3, f"{upstream.url}/slow/0.1"),
    ]
    leases = Leases()

    async def scenario() -> tuple[dict[int, str], float]:
        async with httpx2.AsyncClient(timeout=5.0) as http:
            start = time.monotonic()
            got = await run_jobs(jobs, leases, http, job_timeout_s=0.5)
            took = time.monotonic() - start
            await wait_until(lambda: hang_closed(upstream), 1.0)  # with the client still open
            return got, took

    got, took = asyncio.run(scenario())
    assert got == {1: '{"n": 1}', 2: "timeout", 3: '{"slept": 0.1}'}, (
        f"with job_timeout_s=0.5 run_jobs returned {got}"
    )
    assert took < 2.0, f"run_jobs took {took:.1f} s with job_timeout_s=0.5"
    assert not leases.held, f"leases still held after the batch: {sorted(leases.held)}"
    assert hang_closed(upstream), "the timed-out job's request to /hang was still open 1 s later"


def test_cancelled_job_stops_and_ends_cancelled(upstream):
    leases = Leases()

    async def scenario() -> tuple[asyncio.Task[str], object]:
        async with httpx2.AsyncClient(timeout=5.0) as http:
            task = asyncio.create_task(run_job(Job(7, f"{upstream.url}/hang"), leases, http))
            started = await wait_until(lambda: upstream.in_flight() == 1)
            assert started, "run_job never sent its request"
            task.cancel()
            outcome: object
            try:
                outcome = await asyncio.wait_for(task, 2.0)
            except asyncio.CancelledError:
                outcome = "cancelled"
            await wait_until(lambda: hang_closed(upstream), 1.0)  # with the client still open
            return task, outcome

    task, outcome = asyncio.run(scenario())
    assert task.cancelled(), f"run_job was cancelled but returned {outcome!r} instead of ending cancelled"
    assert not leases.held, "the cancelled job kept its lease"
    assert hang_closed(upstream), "the cancelled job's request to /hang was still open 1 s later"
