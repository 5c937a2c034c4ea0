"""Request ids with a pure ASGI function middleware added by add_middleware: since it sits inside Starlette's
error handler, it answers a crash's 500 itself (problem+json, with the id) and logs the traceback."""

import asyncio
import json
import logging
import re
import secrets
from contextvars import ContextVar
from typing import Annotated

from fastapi import Depends, FastAPI, Header
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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


_rid: ContextVar[str] = ContextVar("rid", default="-")
_valid = re.compile(r"[A-Za-z0-9-]{1,64}").fullmatch
_make = logging.getLogRecordFactory()


def _tag(*args: object, **kwargs: object) -> logging.LogRecord:
    record = _make(*args, **kwargs)
    record.request_id = _rid.get()
    return record


logging.setLogRecordFactory(_tag)


def with_request_id(inner: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await inner(scope, receive, send)
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        rid = given if _valid(given) else secrets.token_hex(8)
        _rid.set(rid)  # this task's context only: each request runs in its own task
        state = {"status": 500, "started": False}

        async def tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                state.update(status=message["status"], started=True)
                headers = [*message.get("headers", []), (b"x-request-id", rid.encode())]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await inner(scope, receive, tagged)
        except Exception:
            logging.getLogger("app.errors").exception("unhandled error")
            if state["started"]:
                raise
            body = json.dumps(
                {"type": "about:blank", "title": "Internal Server Error", "status": 500}
            ).encode()
            problem = [(b"content-type", b"application/problem+json")]
            await tagged({"type": "http.response.start", "status": 500, "headers": problem})
            await tagged({"type": "http.response.body", "body": body})
        finally:
            user = current_user.get() or "-"
            logging.getLogger("app.access").info(
                "%s %s %s %s", scope["method"], scope["path"], state["status"], user
            )

    return middleware


app.add_middleware(with_request_id)
