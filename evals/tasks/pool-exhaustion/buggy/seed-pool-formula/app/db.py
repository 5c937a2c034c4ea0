"""The database engine and session factory."""

import math
import os

from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

CONCURRENT_REQUESTS = 200
AVG_QUERIES_PER_REQUEST = 4
POOL_SIZE = math.ceil(CONCURRENT_REQUESTS / AVG_QUERIES_PER_REQUEST * 1.5)  # 75

engine = create_async_engine(
    os.environ["DATABASE_URL"], pool_size=POOL_SIZE, max_overflow=10, pool_timeout=0.5, pool_pre_ping=True
)
Session = async_sessionmaker(engine, expire_on_commit=False)
