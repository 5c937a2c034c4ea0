"""Tables (given)."""

from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Signup(Base):
    __tablename__ = "signup"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str]
    welcome_sent: Mapped[bool] = mapped_column(default=False)
