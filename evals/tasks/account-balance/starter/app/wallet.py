"""Deposits and withdrawals."""


async def deposit(account_id: int, amount: int) -> int:
    """Add amount to the balance; return the new balance."""
    raise NotImplementedError


async def withdraw(account_id: int, amount: int) -> bool:
    """Take amount if the balance covers it; return whether it was taken."""
    raise NotImplementedError
