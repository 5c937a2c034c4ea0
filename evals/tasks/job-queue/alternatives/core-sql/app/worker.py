"""The job worker in plain SQL on a Core connection."""

from collections.abc import Awaitable, Callable

from sqlalchemy import text

from app.db import engine

Handler = Callable[[int, str], Awaitable[None]]

CLAIM = text(
    "SELECT id, payload FROM job WHERE status = 'pending' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED"
)
FINISH = text("UPDATE job SET status = 'done' WHERE id = :id")


async def run_worker(handle: Handler) -> int:
    handled = 0
    async with engine.connect() as conn:
        while True:
            async with conn.begin():
                row = (await conn.execute(CLAIM)).first()
                if row is None:
                    return handled
                await handle(row.id, row.payload)
                await conn.execute(FINISH, {"id": row.id})
            handled += 1
