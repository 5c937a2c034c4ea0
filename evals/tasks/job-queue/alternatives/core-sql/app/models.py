"""Tables (given)."""

from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Job(Base):
    __tablename__ = "job"
    id: Mapped[int] = mapped_column(primary_key=True)
    payload: Mapped[str]
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)  # pending | done
