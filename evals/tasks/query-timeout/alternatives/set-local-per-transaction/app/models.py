"""Tables (given)."""

from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Product(Base):
    __tablename__ = "product"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]


class SearchLog(Base):
    __tablename__ = "search_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    q: Mapped[str]
    timed_out: Mapped[bool] = mapped_column(default=False)
