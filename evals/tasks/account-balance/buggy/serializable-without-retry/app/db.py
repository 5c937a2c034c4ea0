"""The database engine and session factory: SERIALIZABLE, so no update is ever lost."""

import os

from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

engine = create_async_engine(os.environ["DATABASE_URL"], isolation_level="SERIALIZABLE")
Session = async_sessionmaker(engine, expire_on_commit=False)
