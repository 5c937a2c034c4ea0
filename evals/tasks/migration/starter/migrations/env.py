"""Alembic environment: runs the migrations on an asyncpg connection."""

import asyncio
import os

from alembic import context
from app.models import Base
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine

target_metadata = Base.metadata


def do_run_migrations(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    engine = create_async_engine(os.environ["DATABASE_URL"])
    async with engine.connect() as connection:
        await connection.run_sync(do_run_migrations)
    await engine.dispose()


asyncio.run(run_async_migrations())
