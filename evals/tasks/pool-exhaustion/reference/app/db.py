"""The database engine and session factory.

Budget: 100 max_connections - 3 superuser slots - 10 kept free = 87 for 3 replicas x 4 workers = 12 pools,
so each process may open at most 7 (pool_size + max_overflow).
"""

import os

from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

engine = create_async_engine(
    os.environ["DATABASE_URL"],
    pool_size=5,
    max_overflow=2,
    pool_timeout=0.5,  # a request waits at most this long for a connection, then gets 503
    pool_pre_ping=True,  # a connection the server dropped (failover) is replaced on checkout
    pool_recycle=1800,
)
Session = async_sessionmaker(engine, expire_on_commit=False)
