"""The signup API. DATABASE_URL names the database, MAIL_URL the mail service."""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import httpx2
from fastapi import BackgroundTasks, Depends, FastAPI, Request
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


async def welcome(session: AsyncSession, request: Request, signup: Signup) -> None:
    await send_welcome(request.state.http, request.state.mail_url, signup.email)
    signup.welcome_sent = True  # committed by get_session, which exits after the background tasks


@app.post("/signups", status_code=201)
async def create_signup(
    body: NewSignup, session: SessionDep, request: Request, background: BackgroundTasks
) -> SignupOut:
    signup = Signup(email=body.email)
    session.add(signup)
    await session.flush()
    background.add_task(welcome, session, request, signup)
    return SignupOut(id=signup.id)
