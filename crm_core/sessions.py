"""Server-side log-in sessions for the web panel.

The browser keeps a random token; the database keeps only its SHA-256, the user, and the
times that decide when the session ends:

- after ``Settings.session_idle_minutes`` without activity (idle expiry),
- after ``Settings.session_max_hours`` whatever the activity (absolute expiry),
- when the user logs out, is deactivated, or has their password changed.

An ended session never comes back: ``resolve`` returns ``None`` for it from then on.

    with db.transaction() as s:
        outcome = sessions.login(s, username="ann", password="…", address="10.0.0.5")
    ...
    with db.transaction() as s:
        user = sessions.resolve(s, token=outcome.token)  # None once expired or ended
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from crm_core import audit, users
from crm_core.access import Actor
from crm_core.models import LoginSession, User, utcnow
from crm_core.settings import get_settings

#: ``last_seen_at`` is written at most this often, so every click does not cost a write.
TOUCH_EVERY = timedelta(seconds=15)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class LoginOutcome:
    """The result of a log-in attempt: a token on success, else the reason (and the wait)."""

    ok: bool
    token: str | None = None
    user_id: int | None = None
    reason: str = ""
    retry_after: int = 0


def start_session(
    session: Session,
    *,
    user: User,
    address: str | None = None,
    user_agent: str | None = None,
    now: datetime | None = None,
) -> str:
    """Open a session for ``user`` (already authenticated) and return its token."""
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    row = LoginSession(
        token_hash=_hash(token),
        user_id=user.id,
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(hours=get_settings().session_max_hours),
        address=(address or None) and address[:64],
        user_agent=(user_agent or None) and user_agent[:255],
    )
    session.add(row)
    session.flush()
    return token


def login(
    session: Session,
    *,
    username: str,
    password: str,
    address: str | None = None,
    user_agent: str | None = None,
    now: datetime | None = None,
) -> LoginOutcome:
    """Check the password (argon2id, throttled, audited) and open a session when it is right.

    The caller commits either way, so failures and the throttle are recorded.
    """
    result = users.authenticate(
        session,
        username=username,
        password=password,
        address=address,
        now=now,
        free_attempts=get_settings().login_throttle_after,
    )
    if not result.ok or result.user is None:
        return LoginOutcome(False, reason=result.reason, retry_after=result.retry_after)
    token = start_session(
        session, user=result.user, address=address, user_agent=user_agent, now=now
    )
    return LoginOutcome(True, token=token, user_id=result.user.id)


def _end(session: Session, row: LoginSession, reason: str, now: datetime) -> None:
    row.ended_at = now
    row.end_reason = reason
    audit.record(
        session,
        actor=None,
        action=f"auth.session_{reason}",
        entity_type="user",
        entity_id=row.user_id,
        detail=f"session {row.id}",
    )
    session.flush()


def resolve(
    session: Session, *, token: str | None, now: datetime | None = None, touch: bool = True
) -> User | None:
    """The user of a live session, or ``None``. Expired sessions are ended (and audited) here;
    a live one has its idle clock reset when ``touch`` is true."""
    if not token:
        return None
    now = now or utcnow()
    row = session.scalar(select(LoginSession).where(LoginSession.token_hash == _hash(token)))
    if row is None or row.ended_at is not None:
        return None
    settings = get_settings()
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        _end(session, row, "revoked", now)
        return None
    if user.password_changed_at is not None and user.password_changed_at > row.created_at:
        _end(session, row, "revoked", now)
        return None
    if now >= row.expires_at:
        _end(session, row, "expired", now)
        return None
    if now - row.last_seen_at >= timedelta(minutes=settings.session_idle_minutes):
        _end(session, row, "idle", now)
        return None
    if touch and now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
        session.flush()
    return user


def end_session(session: Session, *, token: str | None, now: datetime | None = None) -> bool:
    """Log out: end the session on the server. True when a live session was ended."""
    if not token:
        return False
    row = session.scalar(select(LoginSession).where(LoginSession.token_hash == _hash(token)))
    if row is None or row.ended_at is not None:
        return False
    now = now or utcnow()
    row.ended_at = now
    row.end_reason = "logout"
    user = session.get(User, row.user_id)
    audit.record(
        session,
        actor=user,
        action="auth.logout",
        entity_type="user",
        entity_id=row.user_id,
        detail=f"session {row.id}",
    )
    session.flush()
    return True


def end_user_sessions(
    session: Session, *, actor: Actor, user_id: int, now: datetime | None = None
) -> int:
    """End every live session of a user (an admin's "log out everywhere"); returns how many."""
    if actor.id != user_id:
        from crm_core.access import require

        require(actor, "users.manage")
    now = now or utcnow()
    result = session.execute(
        update(LoginSession)
        .where(LoginSession.user_id == user_id, LoginSession.ended_at.is_(None))
        .values(ended_at=now, end_reason="revoked")
        .execution_options(synchronize_session=False)
    )
    count = int(result.rowcount or 0)  # type: ignore[attr-defined]
    if count:
        audit.record(
            session,
            actor=actor,
            action="auth.sessions_revoked",
            entity_type="user",
            entity_id=user_id,
            detail=f"{count} session(s)",
        )
    session.flush()
    return count


def live_sessions(session: Session, *, user_id: int) -> list[LoginSession]:
    """Sessions of a user that have not ended (some may be past their expiry, not yet seen)."""
    stmt = (
        select(LoginSession)
        .where(LoginSession.user_id == user_id, LoginSession.ended_at.is_(None))
        .order_by(LoginSession.id)
    )
    return list(session.scalars(stmt))
