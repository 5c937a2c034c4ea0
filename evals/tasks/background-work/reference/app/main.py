"""The signup API. DATABASE_URL names the database, MAIL_URL the mail service."""

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import httpx2
from fastapi import BackgroundTasks, Depends, FastAPI, Request
from pydantic import BaseModel
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from app.mail import send_welcome
from app.models import Signup

logger = logging.getLogger(__name__)


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


async def welcome(
    sessions: async_sessionmaker[AsyncSession],
    http: httpx2.AsyncClient,
    mail_url: str,
    signup_id: int,
    email: str,
) -> None:
    """Runs after the response, with its own session (the request's is closed by then)."""
    try:
        await send_welcome(http, mail_url, email)
        async with sessions.begin() as session:
            await session.execute(update(Signup).where(Signup.id == signup_id).values(welcome_sent=True))
    except Exception:
        logger.exception("welcome mail for signup %s failed", signup_id)


@app.post("/signups", status_code=201)
async def create_signup(
    body: NewSignup, session: SessionDep, request: Request, background: BackgroundTasks
) -> SignupOut:
    signup = Signup(email=body.email)
    session.add(signup)
    await session.commit()
    state = request.state
    background.add_task(welcome, state.sessions, state.http, state.mail_url, signup.id, body.email)
    return SignupOut(id=signup.id)
