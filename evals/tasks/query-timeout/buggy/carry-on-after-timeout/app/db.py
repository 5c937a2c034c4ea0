"""The database engine and session factory.

Every connection gets statement_timeout = 1 s from the server side, so PostgreSQL itself stops a stuck
statement, also when the process that sent it is gone.
"""

import os

from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

engine = create_async_engine(
    os.environ["DATABASE_URL"],
    pool_pre_ping=True,
    connect_args={"server_settings": {"statement_timeout": "1000"}},  # milliseconds
)
Session = async_sessionmaker(engine, expire_on_commit=False)
