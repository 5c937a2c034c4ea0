"""The orders front end (a cut-down version for this change)."""

import asyncio
import logging
from contextvars import ContextVar
from typing import Annotated

from fastapi import Depends, FastAPI, Header

log = logging.getLogger("app.orders")
current_user: ContextVar[str | None] = ContextVar("current_user", default=None)


async def authenticate(x_user: Annotated[str | None, Header()] = None) -> str | None:
    current_user.set(x_user)  # the real one checks a token
    return x_user


app = FastAPI(dependencies=[Depends(authenticate)])


@app.get("/orders/{n}")
async def get_order(n: int) -> dict[str, int]:
    log.info("order %d looked up", n)
    await asyncio.sleep(0.01)  # the database
    log.info("order %d served", n)
    return {"n": n}


@app.get("/crash")
async def crash() -> None:
    log.warning("about to fail")
    raise RuntimeError("the database exploded")
