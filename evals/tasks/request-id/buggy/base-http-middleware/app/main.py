"""Request ids with @app.middleware("http") (fastapi-middleware, Incorrect: BaseHTTPMiddleware loses the endpoint's contextvars and skips crashes)."""

import asyncio
import logging
import re
import uuid
from contextvars import ContextVar
from typing import Annotated

from fastapi import Depends, FastAPI, Header, Request, Response
from starlette.middleware.base import RequestResponseEndpoint

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


request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
SANE_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
access_log = logging.getLogger("app.access")
_base_factory = logging.getLogRecordFactory()


def _record_with_request_id(*args: object, **kwargs: object) -> logging.LogRecord:
    record = _base_factory(*args, **kwargs)
    record.request_id = request_id.get()
    return record


logging.setLogRecordFactory(_record_with_request_id)


@app.middleware("http")
async def add_request_id(request: Request, call_next: RequestResponseEndpoint) -> Response:
    sent = request.headers.get("x-request-id", "")
    rid = sent if SANE_ID.fullmatch(sent) else uuid.uuid4().hex
    request_id.set(rid)
    response = await call_next(request)
    response.headers["X-Request-ID"] = rid
    access_log.info("%s %s %d %s", request.method, request.url.path, response.status_code, current_user.get() or "-")
    return response
