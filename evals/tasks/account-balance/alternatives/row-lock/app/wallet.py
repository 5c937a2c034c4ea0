"""Deposits and withdrawals in Python, on a row locked with SELECT ... FOR UPDATE."""

from app.db import Session
from app.models import Account


async def deposit(account_id: int, amount: int) -> int:
    async with Session.begin() as session:
        account = await session.get_one(Account, account_id, with_for_update=True)
        account.balance += amount
        return account.balance


async def withdraw(account_id: int, amount: int) -> bool:
    async with Session.begin() as session:
        account = await session.get_one(Account, account_id, with_for_update=True)
        if account.balance < amount:
            return False
        account.balance -= amount
        return True
