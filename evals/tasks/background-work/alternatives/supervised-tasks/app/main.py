"""The signup API: background mails are tasks the lifespan owns; shutdown waits for them."""

import asyncio
import logging
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

logger = logging.getLogger(__name__)


class NewSignup(BaseModel):
    email: str


class SignupOut(BaseModel):
    id: int


class Background:
    """Holds a strong reference to each task, logs its failure, and drains them at shutdown."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[None]] = set()

    def start(self, coro: Any, what: str) -> None:
        task = asyncio.create_task(coro, name=what)
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("%s failed", task.get_name(), exc_info=task.exception())

    async def drain(self, seconds: float) -> None:
        if self.tasks:
            _, pending = await asyncio.wait(self.tasks, timeout=seconds)
            for task in pending:
                logger.error("%s still running at shutdown: cancelled", task.get_name())
                task.cancel()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    engine = create_async_engine(os.environ["DATABASE_URL"])
    background = Background()
    try:
        async with httpx2.AsyncClient(timeout=10.0) as http:
            yield {
                "sessions": async_sessionmaker(engine, expire_on_commit=False),
                "http": http,
                "mail_url": os.environ["MAIL_URL"],
                "background": background,
            }
            await background.drain(20)
    finally:
        await engine.dispose()


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.state.sessions.begin() as session:  # commits when the request is done
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
app = FastAPI(lifespan=lifespan)


async def welcome(state: Any, signup_id: int, email: str) -> None:
    await send_welcome(state.http, state.mail_url, email)
    async with state.sessions.begin() as session:  # its own session
        signup = await session.get_one(Signup, signup_id)
        signup.welcome_sent = True


@app.post("/signups", status_code=201)
async def create_signup(body: NewSignup, session: SessionDep, request: Request) -> SignupOut:
    signup = Signup(email=body.email)
    session.add(signup)
    await session.commit()
    request.state.background.start(welcome(request.state, signup.id, body.email), f"welcome mail {signup.id}")
    return SignupOut(id=signup.id)
