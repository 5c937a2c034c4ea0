"""Deposits and withdrawals as single UPDATE statements: PostgreSQL reads and writes under the row lock."""

from sqlalchemy import update

from app.db import Session
from app.models import Account


async def deposit(account_id: int, amount: int) -> int:
    async with Session.begin() as session:
        return await session.scalar(
            update(Account)
            .where(Account.id == account_id)
            .values(balance=Account.balance + amount)
            .returning(Account.balance)
        )


async def withdraw(account_id: int, amount: int) -> bool:
    async with Session.begin() as session:
        taken = await session.scalar(
            update(Account)
            .where(Account.id == account_id, Account.balance >= amount)
            .values(balance=Account.balance - amount)
            .returning(Account.id)
        )
    return taken is not None
