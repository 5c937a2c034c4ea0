"""The customers API."""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel
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


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    command.upgrade(Config(str(ALEMBIC_INI)), "head")
    engine = create_async_engine(os.environ["DATABASE_URL"])
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
