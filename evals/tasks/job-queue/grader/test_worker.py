"""Grades app.worker.run_worker with 4 concurrent workers: exactly once, in parallel, and crash-safe."""

import asyncio
from collections import Counter

import app.db
import pytest
from app.worker import run_worker
from conftest import fill, statuses

JOBS, WORKERS = 24, 4


class Recorder:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.calls: list[int] = []
        self.now = self.peak = 0

    async def handle(self, job_id: int, payload: str) -> None:
        assert payload == f"payload {job_id}", f"job {job_id} was handed payload {payload!r}"
        self.calls.append(job_id)
        self.now += 1
        self.peak = max(self.peak, self.now)
        try:
            await asyncio.sleep(self.seconds)
        finally:
            self.now -= 1


@pytest.fixture(scope="module")
def shared_run() -> tuple[Recorder, list[int]]:
    fill(JOBS)
    recorder = Recorder(0.05)

    async def scenario() -> list[int]:
        try:
            async with asyncio.timeout(15):
                return await asyncio.gather(*(run_worker(recorder.handle) for _ in range(WORKERS)))
        finally:
            await app.db.engine.dispose()

    return recorder, asyncio.run(scenario())


def test_every_job_handled_exactly_once(shared_run):
    recorder, counts = shared_run
    twice = {job: n for job, n in Counter(recorder.calls).items() if n > 1}
    assert not twice, (
        f"{len(twice)} jobs were handled more than once by {WORKERS} workers, e.g. {dict(list(twice.items())[:3])}"
    )
    assert len(recorder.calls) == JOBS, f"{len(recorder.calls)} of {JOBS} jobs were handled"
    assert statuses() == {"done": JOBS}, f"job statuses after the run: {statuses()}"
    assert sum(counts) == JOBS, f"the workers returned {counts}, which add up to {sum(counts)}, not {JOBS}"


def test_workers_handle_jobs_at_the_same_time(shared_run):
    recorder, _ = shared_run
    assert recorder.peak >= 2, f"{WORKERS} workers ran at most {recorder.peak} handler at a time"


def test_job_of_a_dead_worker_is_picked_up(server_connections):
    fill(3)
    first = Recorder(0.0)

    async def scenario() -> tuple[list[int], int]:
        stuck = asyncio.Event()

        async def hangs(job_id: int, payload: str) -> None:
            first.calls.append(job_id)
            stuck.set()
            await asyncio.sleep(30)  # the worker dies in here

        try:
            dying = asyncio.create_task(run_worker(hangs))
            await asyncio.wait_for(stuck.wait(), 5)
            dying.cancel()
            await asyncio.gather(dying, return_exceptions=True)
            await app.db.engine.dispose()
            server_connections.terminate()  # whatever the dead worker had open is gone
            async with asyncio.timeout(10):
                return first.calls, await run_worker(first.handle)
        finally:
            await app.db.engine.dispose()

    calls, handled = asyncio.run(scenario())
    assert statuses() == {"done": 3}, (
        f"job {calls[0]} was taken by a worker that died; after another worker ran, statuses are {statuses()}"
    )
    assert handled == 3, f"the next worker handled {handled} of the 3 jobs"
