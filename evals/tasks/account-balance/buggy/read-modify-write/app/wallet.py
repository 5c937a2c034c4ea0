"""Deposits and withdrawals."""

from app.db import Session
from app.models import Account


async def deposit(account_id: int, amount: int) -> int:
    async with Session.begin() as session:
        account = await session.get_one(Account, account_id)
        account.balance += amount
        return account.balance


async def withdraw(account_id: int, amount: int) -> bool:
    async with Session.begin() as session:
        account = await session.get_one(Account, account_id)
        if account.balance < amount:
            return False
        account.balance -= amount
        return True
