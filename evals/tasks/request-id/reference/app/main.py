"""The orders front end. Request ids: a pure ASGI middleware wrapped around the whole app (so even the 500
that Starlette's error handler sends passes through it), a ContextVar, and a log record factory."""

import asyncio
import logging
import re
import time
import uuid
from contextvars import ContextVar
from typing import Annotated

from fastapi import Depends, FastAPI, Header
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("app.orders")
current_user: ContextVar[str | None] = ContextVar("current_user", default=None)


async def authenticate(x_user: Annotated[str | None, Header()] = None) -> str | None:
    current_user.set(x_user)  # the real one checks a token
    return x_user


api = FastAPI(dependencies=[Depends(authenticate)])


@api.get("/orders/{n}")
async def get_order(n: int) -> dict[str, int]:
    log.info("order %d looked up", n)
    await asyncio.sleep(0.01)  # the database
    log.info("order %d served", n)
    return {"n": n}


@api.get("/crash")
async def crash() -> None:
    log.warning("about to fail")
    raise RuntimeError("the database exploded")


request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
SANE_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
access_log = logging.getLogger("app.access")
_base_factory = logging.getLogRecordFactory()


def _record_with_request_id(*args: object, **kwargs: object) -> logging.LogRecord:
    record = _base_factory(*args, **kwargs)
    record.request_id = request_id.get()
    return record


logging.setLogRecordFactory(_record_with_request_id)


class RequestContext:
    """Pure ASGI: runs in the request's own task, so the endpoint's ContextVars are visible in ``send``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = Headers(scope=scope).get("x-request-id", "")
        rid = sent if SANE_ID.fullmatch(sent) else uuid.uuid4().hex
        token = request_id.set(rid)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["x-request-id"] = rid
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            user = current_user.get() or "-"
            access_log.info(
                "%s %s %d %s", scope["method"], scope["path"], status, user,
                extra={"duration_ms": round((time.perf_counter() - started) * 1000, 1)},
            )  # fmt: skip
            request_id.reset(token)


app = RequestContext(api)  # outside ServerErrorMiddleware: its 500s get the header too
