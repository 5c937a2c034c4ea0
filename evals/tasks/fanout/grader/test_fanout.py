"""fetch_all: order, concurrency, failure, transport errors, deadline, cancellation, nothing left running."""

import asyncio
import time

import httpx2
from conftest import describe, still_running


def _client() -> httpx2.AsyncClient:
    return httpx2.AsyncClient(timeout=15)


def _holds_httpx_error(error: BaseException, kind: type[Exception]) -> bool:
    if isinstance(error, kind):
        return True
    if isinstance(error, BaseExceptionGroup):
        return any(_holds_httpx_error(e, kind) for e in error.exceptions)
    return False


SETTLE_S = 2.0


async def _settle(upstream) -> None:
    """Keep the loop (and the client) running until the upstream has finished every request, or 2 s."""
    await asyncio.to_thread(upstream.wait_idle, SETTLE_S)


def _kept_running(upstream, prefix: str, t_raised: float, after: float) -> list[str]:
    """Requests under ``prefix`` that were still going at ``after`` and ran on although fetch_all raised."""
    kept = []
    for r in upstream.served(prefix):
        if r.client_gone or (r.end is not None and r.end <= after):
            continue
        if r.end is None:
            kept.append(f"{r.path} was still in flight {SETTLE_S:g} s after fetch_all raised")
        else:
            kept.append(f"{r.path} was answered {max(r.end - t_raised, 0):.1f} s after fetch_all raised")
    return kept


def test_returns_bodies_in_order(upstream, fetch_all):
    urls = [
        f"{upstream.url}/slow/0.3",
        f"{upstream.url}/json/1",
        f"{upstream.url}/slow/0.1",
        f"{upstream.url}/json/2",
    ]

    async def main():
        async with _client() as client:
            got = await fetch_all(client, urls, deadline=10)
            return got, still_running()

    got, left = asyncio.run(main())
    want = [{"slept": 0.3}, {"n": 1}, {"slept": 0.1}, {"n": 2}]
    assert got == want, f"returned {got!r} for {len(urls)} URLs, expected the bodies in order: {want!r}"
    assert not left, f"tasks still running after fetch_all returned: {describe(left)}"


def test_requests_run_at_the_same_time(upstream, fetch_all):
    urls = [f"{upstream.url}/slow/0.4?i={i}" for i in range(4)]

    async def main():
        async with _client() as client:
            await fetch_all(client, urls, deadline=15)

    asyncio.run(main())
    served = upstream.served("/slow/")
    assert len(served) == 4, f"the upstream saw {len(served)} of the 4 requests"
    first_end = min(r.end for r in served)
    late = [r for r in served if r.start >= first_end]
    assert not late, (
        f"requests ran one after another: {len(late)} of 4 started only after another had finished"
        f" (the last began {max(r.start for r in served) - min(r.start for r in served):.1f} s after the first)"
    )


def _failure_case(upstream, fetch_all, failing: str, kind: type[Exception]) -> None:
    urls = [
        f"{upstream.url}/slow/2?i=0",
        f"{upstream.url}{failing}",
        f"{upstream.url}/slow/2?i=1",
        f"{upstream.url}/json/3",
    ]

    async def main():
        async with _client() as client:
            t0 = time.monotonic()
            try:
                result = await fetch_all(client, urls, deadline=15)
            except BaseException as error:  # noqa: BLE001 (the test inspects what came out)
                raised, t_raised = error, time.monotonic()
            else:
                raise AssertionError(f"fetch_all returned {result!r} although {failing} failed")
            left = still_running()
            await _settle(upstream)  # siblings that kept running get their answers now
            return raised, t_raised - t0, t_raised, left

    raised, elapsed, t_raised, left = asyncio.run(main())
    assert _holds_httpx_error(raised, kind), (
        f"{failing} raised {type(raised).__name__}: {raised!s:.200}, not the httpx2 {kind.__name__}"
        " (or an ExceptionGroup holding it)"
    )
    failed = upstream.served(failing)
    assert failed, f"fetch_all raised {type(raised).__name__} without requesting {failing}"
    before = [r.path for r in upstream.served("/slow/") if r.end is not None and r.end <= failed[0].start]
    assert not before, (
        f"requests ran one after another: {failing} was requested only after {', '.join(before)} had finished"
    )
    kept = _kept_running(upstream, "/slow/", t_raised, after=failed[0].end or t_raised)
    assert not kept, f"siblings kept running after {failing}: {'; '.join(kept)}"
    assert not left, f"tasks still running after fetch_all raised for {failing}: {describe(left)}"
    assert elapsed < 1.8, f"fetch_all raised {elapsed:.1f} s after the start, not as soon as {failing} failed"


def test_a_failed_response_cancels_the_others(upstream, fetch_all):
    _failure_case(upstream, fetch_all, "/status/500", httpx2.HTTPStatusError)


def test_a_dropped_connection_cancels_the_others(upstream, fetch_all):
    _failure_case(upstream, fetch_all, "/drop", httpx2.TransportError)


def test_deadline_raises_timeout_error_and_stops_the_requests(upstream, fetch_all):
    urls = [f"{upstream.url}/json/1", f"{upstream.url}/hang", f"{upstream.url}/slow/5"]

    async def main():
        async with _client() as client:
            t0 = time.monotonic()
            try:
                result = await fetch_all(client, urls, deadline=0.5)
            except BaseException as error:  # noqa: BLE001
                raised, elapsed = error, time.monotonic() - t0
            else:
                raise AssertionError(f"fetch_all returned {result!r} although /hang never answers")
            left = still_running()
            await _settle(upstream)
            return raised, elapsed, left

    raised, elapsed, left = asyncio.run(main())
    assert type(raised) is TimeoutError, (
        f"after the 0.5 s deadline fetch_all raised {type(raised).__name__}: {raised!s:.200},"
        " not the builtin TimeoutError"
    )
    assert elapsed >= 0.45, f"TimeoutError came after {elapsed:.2f} s, before the 0.5 s deadline"
    assert elapsed < 3.0, f"TimeoutError came only after {elapsed:.1f} s for a 0.5 s deadline"
    assert not left, f"tasks still running after the deadline: {describe(left)}"
    kept = [r.path for r in upstream.requests if r.path in ("/hang", "/slow/5") and not r.client_gone]
    assert not kept, f"requests kept running after the deadline: {', '.join(kept)} still going or answered"


def test_cancelling_the_caller_cancels_everything(upstream, fetch_all):
    urls = [f"{upstream.url}/hang", f"{upstream.url}/slow/5"]

    async def main():
        async with _client() as client:
            call = asyncio.create_task(fetch_all(client, urls, deadline=30))
            for _ in range(300):  # until both requests reached the upstream (at most 3 s)
                if upstream.in_flight() == 2:
                    break
                await asyncio.sleep(0.01)
            call.cancel()
            try:
                outcome = await call
            except asyncio.CancelledError:
                outcome = "cancelled"
            except BaseException as error:  # noqa: BLE001
                outcome = f"raised {type(error).__name__}: {error!s:.200}"
            else:
                outcome = f"returned {outcome!r}"
            left = still_running()
            await _settle(upstream)
            return outcome, call.cancelled(), left

    outcome, cancelled, left = asyncio.run(main())
    assert outcome == "cancelled" and cancelled, f"after the caller cancelled it, fetch_all {outcome}"
    assert not left, f"tasks still running after fetch_all was cancelled: {describe(left)}"
    kept = [r.path for r in upstream.requests if not r.client_gone]
    assert not kept, (
        f"requests kept running after the caller cancelled: {', '.join(kept)} still going or answered"
    )
