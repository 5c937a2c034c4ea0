"""A production async FastAPI service on PostgreSQL: copy it (as app.py), rename the models, keep the wiring.

Run: DATABASE_URL=postgresql+asyncpg://user:pw@127.0.0.1/app UPSTREAM_URL=http://127.0.0.1:9000 python app.py
(HOST, PORT and the other Settings fields too), `uvicorn app:app` or `fastapi run --entrypoint app:app`. Serve
`app`, the middleware-wrapped app: `fastapi run app.py` discovers the FastAPI object `api` and drops the middleware.
Needs: fastapi, uvicorn, "sqlalchemy[asyncio]", asyncpg, httpx2, pydantic-settings.
Schema: Alembic in production (rules/sqlalchemy-migrations.md); create_schema() is for local dev and tests.
"""

import asyncio
import logging
import re
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from http import HTTPStatus
from typing import Annotated, Any, TypedDict

import httpx2
import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings
from sqlalchemy import ForeignKey, String, select, text
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, selectinload
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("app")
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)  # set by RequestIdMiddleware


class Settings(BaseSettings):
    """Each field from the environment variable of the same name in capitals (DATABASE_URL, POOL_SIZE...)."""

    # SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3
    database_url: Annotated[str, Field(pattern=r"^postgresql\+asyncpg://")]
    upstream_url: str
    pool_size: int = 5  # per process; size it from Little's law (rules/pooling-sizing.md)
    max_overflow: int = 5
    pool_timeout: float = 5.0  # fail fast when the pool is exhausted, not after the default 30 s
    health_timeout: float = 2.0
    shutdown_timeout: int = 20  # seconds; below the orchestrator's grace period (Kubernetes: 30 s by default)
    upstream_timeout: float = 5.0
    upstream_max_connections: int = 20  # per process
    fanout_concurrency: int = 5  # upstream calls in flight per request
    fanout_timeout: float = 10.0
    host: str = "127.0.0.1"
    port: int = 8000


class Base(DeclarativeBase):
    pass


class Customer(Base):
    __tablename__ = "customer"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320), unique=True)
    # lazy="raise": a forgotten loader option fails loudly instead of MissingGreenlet or N+1 queries
    orders: Mapped[list["Order"]] = relationship(back_populates="customer", lazy="raise")


class Order(Base):
    __tablename__ = "customer_order"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), index=True)
    item: Mapped[str] = mapped_column(String(200))
    customer: Mapped[Customer] = relationship(back_populates="orders", lazy="raise")


async def create_schema(engine: AsyncEngine) -> None:
    """Create missing tables: local development and tests ONLY. Production runs `alembic upgrade head`."""
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)


class CustomerIn(BaseModel):
    name: str = Field(max_length=200)
    email: str = Field(max_length=320)


class CustomerOut(CustomerIn):
    model_config = ConfigDict(from_attributes=True)  # built from ORM objects, inside the session
    id: int


class OrderIn(BaseModel):
    item: str = Field(max_length=200)


class OrderOut(OrderIn):
    model_config = ConfigDict(from_attributes=True)
    id: int


class CustomerWithOrders(CustomerOut):
    orders: list[OrderOut]


class Item(BaseModel):
    id: int
    name: str


class Health(BaseModel):
    status: str


class State(TypedDict):  # what the lifespan yields; endpoints see it as request.state
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    http: httpx2.AsyncClient


@asynccontextmanager
async def lifespan(api: FastAPI) -> AsyncIterator[State]:
    settings = Settings()
    engine = create_async_engine(
        settings.database_url,
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        pool_timeout=settings.pool_timeout,
        pool_recycle=1800,  # below any idle timeout between here and the server
        pool_pre_ping=True,  # survives database restarts and failovers
    )
    try:
        async with httpx2.AsyncClient(
            base_url=settings.upstream_url,
            limits=httpx2.Limits(max_connections=settings.upstream_max_connections),
            timeout=httpx2.Timeout(settings.upstream_timeout, connect=2.0),
        ) as http:
            sessions = async_sessionmaker(engine, expire_on_commit=False)
            yield {"settings": settings, "engine": engine, "sessions": sessions, "http": http}
    finally:
        await engine.dispose()


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.state.sessions.begin() as session:  # commits on success, rolls back on error
        yield session


def get_http(request: Request) -> httpx2.AsyncClient:
    return request.state.http


# scope="function": the commit finishes before the response is sent, so a failed commit is not a 200
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
HttpDep = Annotated[httpx2.AsyncClient, Depends(get_http)]


def problem(
    request: Request, status: int, detail: str, headers: Mapping[str, str] | None = None, **extra: Any
) -> JSONResponse:
    """An RFC 9457 problem details response."""
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status, "detail": detail}
    body |= {"instance": request.url.path, **extra}
    return JSONResponse(body, status, headers=headers, media_type="application/problem+json")


async def http_problem(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    return problem(request, exc.status_code, str(exc.detail), exc.headers)  # 405 Allow, 401 WWW-Authenticate


async def validation_problem(request: Request, exc: RequestValidationError) -> JSONResponse:
    return problem(request, 422, "request validation failed", errors=jsonable_encoder(exc.errors()))


async def internal_problem(request: Request, exc: Exception) -> JSONResponse:
    return problem(request, 500, "internal error")  # never exc's text; the server logs the traceback


PROBLEM_HANDLERS = {
    StarletteHTTPException: http_problem,  # also routing's 404 and 405; fastapi's HTTPException subclasses it
    RequestValidationError: validation_problem,
    Exception: internal_problem,
}


async def conflict_problem(request: Request, exc: IntegrityError) -> JSONResponse:
    return problem(request, 409, "conflicts with existing data")


async def busy_problem(request: Request, exc: PoolTimeoutError) -> JSONResponse:
    return problem(request, 503, "database busy")  # every pooled connection busy for pool_timeout: shed load


handlers = {**PROBLEM_HANDLERS, IntegrityError: conflict_problem, PoolTimeoutError: busy_problem}
api = FastAPI(lifespan=lifespan, exception_handlers=handlers)


@api.get("/livez")
async def livez() -> Health:
    """Liveness: the process answers. No dependency here, or a database outage restarts every replica."""
    return Health(status="ok")


@api.get("/readyz")
async def readyz(request: Request) -> Health:
    """Readiness: a timed query; 503 takes this replica out of the load balancer until the database is back."""
    engine: AsyncEngine = request.state.engine
    try:
        async with asyncio.timeout(request.state.settings.health_timeout), engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except (OSError, TimeoutError, SQLAlchemyError) as exc:
        raise HTTPException(503, "database unavailable") from exc
    return Health(status="ok")


@api.post("/customers", status_code=201)
async def create_customer(body: CustomerIn, session: SessionDep) -> CustomerOut:
    customer = Customer(name=body.name, email=body.email)
    session.add(customer)
    await session.flush()  # assigns the id; a duplicate email raises IntegrityError here: 409
    return CustomerOut.model_validate(customer)


@api.post("/customers/{customer_id}/orders", status_code=201)
async def create_order(customer_id: int, body: OrderIn, session: SessionDep) -> OrderOut:
    if await session.get(Customer, customer_id) is None:
        raise HTTPException(404, f"customer {customer_id} not found")
    order = Order(customer_id=customer_id, item=body.item)
    session.add(order)
    await session.flush()
    return OrderOut.model_validate(order)


@api.get("/customers")
async def list_customers(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[CustomerWithOrders]:
    query = select(Customer).options(selectinload(Customer.orders)).order_by(Customer.id)
    customers = await session.scalars(query.limit(limit).offset(offset))  # 2 queries whatever the page size
    return [CustomerWithOrders.model_validate(c) for c in customers]


async def fetch_item(http: httpx2.AsyncClient, limit: asyncio.Semaphore, item_id: int) -> Item:
    async with limit:
        response = await http.get(f"/items/{item_id}")
    response.raise_for_status()
    return Item.model_validate(response.json())


@api.get("/catalog")
async def catalog(
    request: Request, ids: Annotated[list[int], Query(min_length=1, max_length=50)], http: HttpDep
) -> list[Item]:
    settings: Settings = request.state.settings
    limit = asyncio.Semaphore(settings.fanout_concurrency)
    failed = False
    try:  # all or nothing: the first failure cancels the other calls
        async with asyncio.timeout(settings.fanout_timeout), asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(fetch_item(http, limit, n)) for n in ids]
    except* (httpx2.HTTPError, TimeoutError) as group:
        logger.warning("upstream failed: %r", group.exceptions[0])  # the log filter adds the request id
        failed = True
    if failed:  # raised after the try: inside except*, Python 3.11.2 wraps it in an ExceptionGroup (a 500)
        raise HTTPException(502, "upstream unavailable")
    return [task.result() for task in tasks]


class RequestIdMiddleware:
    """Pure ASGI (not @app.middleware("http")): keeps contextvars, adds X-Request-ID to every response."""

    _valid = re.compile(r"[A-Za-z0-9._-]{1,64}")

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan and websockets pass through
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        rid = incoming if self._valid.fullmatch(incoming) else uuid.uuid4().hex
        token = request_id.set(rid)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["x-request-id"] = rid
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id.reset(token)


def add_request_id(record: logging.LogRecord) -> bool:
    """A handler filter: every record the handler writes, of any logger, carries the request's id."""
    record.request_id = request_id.get() or "-"
    return True


def configure_logging() -> None:
    handler = logging.StreamHandler()
    handler.addFilter(add_request_id)  # on the handler, not a logger: library records pass it too
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s [%(request_id)s] %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])


# Wrapped around the whole app (outside ServerErrorMiddleware) so 500s carry the id too; wrap CORS the same way.
app = RequestIdMiddleware(api)

if __name__ == "__main__":
    settings = Settings()
    configure_logging()
    # On SIGTERM uvicorn stops accepting, waits for running requests up to the timeout, then runs the lifespan's
    # shutdown (the default waits forever, and the orchestrator's SIGKILL comes first).
    uvicorn.run(
        app, host=settings.host, port=settings.port, timeout_graceful_shutdown=settings.shutdown_timeout
    )
