"""Grades app.wallet under concurrency: no lost deposit, no overdraft, no errors from conflicts."""

import asyncio

import app.db
from app.wallet import deposit, withdraw
from conftest import balance_of, set_balance


def run_all(calls) -> list:
    async def scenario() -> list:
        try:
            async with asyncio.timeout(15):
                return await asyncio.gather(*calls(), return_exceptions=True)
        finally:
            await app.db.engine.dispose()

    return asyncio.run(scenario())


def errors(results: list) -> list[str]:
    return [f"{type(r).__name__}: {str(r).splitlines()[0]}" for r in results if isinstance(r, BaseException)]


def test_concurrent_deposits_all_count():
    set_balance(1, 100)
    results = run_all(lambda: [deposit(1, 5) for _ in range(20)])
    failed = errors(results)
    assert not failed, f"{len(failed)} of 20 concurrent deposits raised, e.g. {failed[0]}"
    balance = balance_of(1)
    assert balance == 200, f"20 concurrent deposits of 5 to a balance of 100 left {balance}"
    assert sorted(results) == list(range(105, 201, 5)), f"deposit() returned {sorted(results)}"


def test_concurrent_withdrawals_never_overdraw():
    set_balance(2, 100)
    results = run_all(lambda: [withdraw(2, 30) for _ in range(5)])
    failed = errors(results)
    assert not failed, f"{len(failed)} of 5 concurrent withdrawals raised, e.g. {failed[0]}"
    balance = balance_of(2)
    assert results.count(True) == 3 and balance == 10, (
        f"5 concurrent withdrawals of 30 from 100: {results.count(True)} succeeded, balance {balance}"
    )
