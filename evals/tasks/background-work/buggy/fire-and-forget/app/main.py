"""The signup API. DATABASE_URL names the database, MAIL_URL the mail service."""

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import httpx2
from fastapi import Depends, FastAPI, Request
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from app.mail import send_welcome
from app.models import Signup


class NewSignup(BaseModel):
    email: str


class SignupOut(BaseModel):
    id: int


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    engine = create_async_engine(os.environ["DATABASE_URL"])
    try:
        async with httpx2.AsyncClient(timeout=10.0) as http:
            yield {
                "sessions": async_sessionmaker(engine, expire_on_commit=False),
                "http": http,
                "mail_url": os.environ["MAIL_URL"],
            }
    finally:
        await engine.dispose()


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.state.sessions.begin() as session:  # commits when the request is done
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
app = FastAPI(lifespan=lifespan)


async def welcome(request: Request, signup_id: int, email: str) -> None:
    state = request.state
    await send_welcome(state.http, state.mail_url, email)
    async with state.sessions.begin() as session:
        signup = await session.get_one(Signup, signup_id)
        signup.welcome_sent = True


@app.post("/signups", status_code=201)
async def create_signup(body: NewSignup, session: SessionDep, request: Request) -> SignupOut:
    signup = Signup(email=body.email)
    session.add(signup)
    await session.commit()
    asyncio.create_task(welcome(request, signup.id, body.email))  # noqa: RUF006
    return SignupOut(id=signup.id)
