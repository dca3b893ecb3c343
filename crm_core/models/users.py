"""Users, teams and roles."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_core.models.base import Base, Timestamped, UTCDateTime, Versioned


class Role(enum.StrEnum):
    """The roles of DESIGN.md; ``system`` is the automation user and cannot log in."""

    ADMIN = "admin"
    MANAGER = "manager"
    SALES = "sales"
    SUPPORT = "support"
    DATA_STEWARD = "data_steward"
    ANALYST = "analyst"
    SYSTEM = "system"


class Team(Base, Timestamped):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)

    members: Mapped[list[User]] = relationship(
        back_populates="team", foreign_keys="User.team_id", lazy="raise_on_sql"
    )


class User(Base, Timestamped, Versioned):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str | None] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(20), index=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), index=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    locale: Mapped[str] = mapped_column(String(10), default="en")
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    throttled_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    team: Mapped[Team | None] = relationship(
        back_populates="members", foreign_keys=[team_id], lazy="selectin"
    )

    def __repr__(self) -> str:
        return f"<User {self.username} ({self.role})>"


class LoginThrottle(Base):
    """Failed log-ins per account or address; a throttled key waits, it is never locked for good."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    throttled_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
