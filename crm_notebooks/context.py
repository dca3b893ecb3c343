"""``connect``: a database and a user, so every call in a notebook runs as that user."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.db import Database, get_database
from crm_core.errors import CrmError, NotFound, PermissionDenied
from crm_core.migrate import current_revisions
from crm_core.models import Role, User
from crm_core.settings import get_settings

T = TypeVar("T")


@dataclass
class NotebookContext:
    """A database and the user a notebook acts as (``user`` is a detached ``User``)."""

    db: Database
    user: User
    locale: str = "en"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction (committed on success)."""
        with self.db.transaction() as session:
            yield session

    def run(self, service: Callable[..., T], /, **kwargs: Any) -> T:
        """Call a ``crm_core`` service as the notebook's user in one transaction."""
        with self.db.transaction() as session:
            return service(session, actor=self.user, **kwargs)

    def __repr__(self) -> str:
        return f"<NotebookContext {self.user.username} ({self.user.role}) on {self.db.dialect}>"


def _find_user(session: Session, user: str) -> User:
    found = session.scalar(select(User).where(User.username == user))
    if found is None and user in {r.value for r in Role} and user != Role.SYSTEM:
        # a role name picks that role's first active account (demo data has generated names)
        found = session.scalar(
            select(User).where(User.role == user, User.active.is_(True)).order_by(User.id)
        )
    if found is None:
        raise NotFound(f"user '{user}' does not exist; ask an admin for an account")
    if not found.active:
        raise PermissionDenied(f"user '{found.username}' is deactivated")
    if found.role == Role.SYSTEM:
        raise PermissionDenied("the system user cannot be used in a notebook")
    return found


def _default_url() -> str:
    """The configured database; a notebook kernel started in ``notebooks/`` finds the project's
    ``var/crm.sqlite3`` one folder up."""
    settings = get_settings()
    if settings.database_url or os.environ.get("CRM_DATA_DIR"):
        return settings.resolved_database_url
    here = Path.cwd()
    for folder in (here, here.parent):
        if (folder / "var" / "crm.sqlite3").exists():
            return f"sqlite:///{folder / 'var' / 'crm.sqlite3'}"
    return settings.resolved_database_url


def connect(
    database_url: str | None = None, user: str = "analyst", *, locale: str | None = None
) -> NotebookContext:
    """Open the CRM database (``CRM_DATABASE_URL`` or the default SQLite file) as ``user``.

    ``user`` is a username; a role name such as ``"analyst"`` also works and picks the first
    active account with that role. No password is asked: the notebook runs where the database
    is reachable, and every call still applies the user's access rules and masking.
    """
    db = get_database(database_url or _default_url())
    if not current_revisions(db.engine):
        raise CrmError(f"no CRM database at {db.engine.url!r}: run `crm init` and `crm demo` first")
    with db.transaction() as session:
        found = _find_user(session, user)
        _ = found.team
        session.expunge(found)
    return NotebookContext(db=db, user=found, locale=locale or found.locale or "en")
