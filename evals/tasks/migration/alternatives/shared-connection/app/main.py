"""The customers API."""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from app.models import Customer

ALEMBIC_INI = Path(__file__).resolve().parents[1] / "alembic.ini"


class NewCustomer(BaseModel):
    email: str
    phone: str | None = None


class CustomerOut(BaseModel):
    id: int
    email: str
    phone: str | None


def upgrade_to_head(connection: Connection) -> None:
    config = Config(str(ALEMBIC_INI))
    config.attributes["connection"] = connection  # env.py uses it instead of opening its own
    command.upgrade(config, "head")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    engine = create_async_engine(os.environ["DATABASE_URL"])
    async with engine.begin() as conn:
        await conn.run_sync(upgrade_to_head)  # Alembic runs on this connection, in SQLAlchemy's greenlet
    app.state.sessions = async_sessionmaker(engine, expire_on_commit=False)
    try:
        yield
    finally:
        await engine.dispose()


app = FastAPI(lifespan=lifespan)


@app.post("/customers", status_code=201)
async def create_customer(body: NewCustomer, request: Request) -> CustomerOut:
    async with request.app.state.sessions.begin() as session:
        customer = Customer(email=body.email, phone=body.phone)
        session.add(customer)
    return CustomerOut(id=customer.id, email=customer.email, phone=customer.phone)


@app.get("/customers/{customer_id}")
async def get_customer(customer_id: int, request: Request) -> CustomerOut:
    async with request.app.state.sessions() as session:
        customer = await session.get(Customer, customer_id)
    if customer is None:
        raise HTTPException(404, "no such customer")
    return CustomerOut(id=customer.id, email=customer.email, phone=customer.phone)
