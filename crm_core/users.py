"""Users, teams, passwords (argon2id) and log-in with throttling."""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_core import audit
from crm_core.access import Actor, require
from crm_core.errors import ConflictError, InvalidInput, NotFound
from crm_core.models import LoginThrottle, Role, Team, User, utcnow

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
#: Verified against when the username is unknown, so timing does not reveal which names exist.
_DUMMY_HASH = _hasher.hash("not-a-real-password")

MIN_PASSWORD_LENGTH = 10
SYSTEM_USERNAME = "system"
LOGIN_ROLES = tuple(r.value for r in Role if r != Role.SYSTEM)


def hash_password(password: str) -> str:
    """An argon2id hash of ``password``."""
    return _hasher.hash(password)


def check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"must have at least {MIN_PASSWORD_LENGTH} characters", field="password")
    if password.strip() == "" or len(set(password)) < 4:
        raise InvalidInput("is too simple", field="password")


def generate_password() -> str:
    """A random password fit to print once (about 120 bits)."""
    return secrets.token_urlsafe(15)


def _validate_role(role: str) -> str:
    if role not in LOGIN_ROLES:
        raise InvalidInput(f"unknown role '{role}' (one of {', '.join(LOGIN_ROLES)})", field="role")
    return role


def create_user(
    session: Session,
    *,
    actor: Actor | None,
    username: str,
    role: str,
    password: str,
    display_name: str = "",
    email: str | None = None,
    team_id: int | None = None,
    locale: str = "en",
) -> User:
    """Create a log-in account. ``actor=None`` is allowed only for the very first admin."""
    if actor is None:
        if session.scalar(select(func.count()).select_from(User).where(User.role != Role.SYSTEM)):
            raise InvalidInput("only the first account can be created without an admin")
        if role != Role.ADMIN:
            raise InvalidInput("the first account must be an admin", field="role")
    else:
        require(actor, "users.manage")
    username = (username or "").strip()
    if not username or len(username) > 80 or any(c.isspace() for c in username):
        raise InvalidInput("must be 1-80 characters without spaces", field="username")
    _validate_role(role)
    check_password_strength(password)
    if session.scalar(select(User.id).where(func.lower(User.username) == username.lower())):
        raise ConflictError(f"username '{username}' is taken")
    if team_id is not None and session.get(Team, team_id) is None:
        raise InvalidInput(f"team {team_id} does not exist", field="team_id")
    user = User(
        username=username,
        role=role,
        display_name=display_name or username,
        email=email,
        team_id=team_id,
        locale=locale if locale in ("en", "zh") else "en",
        password_hash=hash_password(password),
        password_changed_at=utcnow(),
        active=True,
    )
    session.add(user)
    session.flush()
    audit.record(
        session,
        actor=actor or user,
        action="user.create",
        entity_type="user",
        entity_id=user.id,
        changes={"username": [None, username], "role": [None, role], "team_id": [None, team_id]},
    )
    return user


def get_system_user(session: Session) -> User:
    """The non-login user that automation acts as (created on first use)."""
    user = session.scalar(select(User).where(User.username == SYSTEM_USERNAME))
    if user is None:
        user = User(username=SYSTEM_USERNAME, role=Role.SYSTEM, display_name="System", active=True)
        session.add(user)
        session.flush()
    return user


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist")
    return user


def list_users(session: Session, *, actor: Actor, include_inactive: bool = True) -> list[User]:
    """Log-in accounts (not the system user). Admins see all; others see active colleagues."""
    stmt = select(User).where(User.role != Role.SYSTEM).order_by(User.username)
    if actor.role != Role.ADMIN or not include_inactive:
        stmt = stmt.where(User.active.is_(True))
    return list(session.scalars(stmt))


def update_user(
    session: Session,
    *,
    actor: Actor,
    user_id: int,
    role: str | None = None,
    team_id: int | None | type[...] = ...,
    active: bool | None = None,
    display_name: str | None = None,
    email: str | None = None,
) -> User:
    """Change an account's role, team, display name or active flag (admins only)."""
    require(actor, "users.manage")
    user = get_user(session, user_id)
    before = {"role": user.role, "team_id": user.team_id, "active": user.active}
    before |= {"display_name": user.display_name, "email": user.email}
    if role is not None:
        user.role = _validate_role(role)
    if team_id is not ...:
        if team_id is not None and session.get(Team, team_id) is None:
            raise InvalidInput(f"team {team_id} does not exist", field="team_id")
        user.team_id = team_id  # type: ignore[assignment]
    if active is not None:
        if not active and user.id == actor.id:
            raise InvalidInput("you cannot deactivate your own account", field="active")
        user.active = active
    if display_name is not None:
        user.display_name = display_name.strip() or user.username
    if email is not None:
        user.email = email or None
    after = {"role": user.role, "team_id": user.team_id, "active": user.active}
    after |= {"display_name": user.display_name, "email": user.email}
    changes = audit.diff(before, after)
    if changes:
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="user.update",
            entity_type="user",
            entity_id=user.id,
            changes=changes,
        )
    return user


def set_password(session: Session, *, actor: Actor, user_id: int, password: str) -> User:
    """Reset a password (admins, or a user for their own account)."""
    if actor.id != user_id:
        require(actor, "users.manage")
    check_password_strength(password)
    user = get_user(session, user_id)
    user.password_hash = hash_password(password)
    user.password_changed_at = utcnow()
    user.failed_logins = 0
    user.throttled_until = None
    session.flush()
    audit.record(
        session, actor=actor, action="user.password_reset", entity_type="user", entity_id=user.id
    )
    return user


def set_locale(session: Session, *, actor: Actor, locale: str) -> User:
    """Remember the acting user's language (``en`` or ``zh``)."""
    if locale not in ("en", "zh"):
        raise InvalidInput("must be 'en' or 'zh'", field="locale")
    user = get_user(session, actor.id)
    user.locale = locale
    session.flush()
    return user


def create_team(session: Session, *, actor: Actor, name: str) -> Team:
    require(actor, "users.manage")
    name = (name or "").strip()
    if not name:
        raise InvalidInput("is required", field="name")
    if session.scalar(select(Team.id).where(Team.name == name)):
        raise ConflictError(f"team '{name}' exists")
    team = Team(name=name)
    session.add(team)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="team.create",
        entity_type="team",
        entity_id=team.id,
        changes={"name": [None, name]},
    )
    return team


def list_teams(session: Session) -> list[Team]:
    return list(session.scalars(select(Team).order_by(Team.name)))


# ---------------------------------------------------------------- log-in


@dataclass(frozen=True)
class AuthResult:
    """Outcome of a log-in attempt. ``retry_after`` is in seconds when throttled."""

    ok: bool
    user: User | None = None
    reason: str = ""
    retry_after: int = 0


def _throttle_delay(failures: int, free: int) -> timedelta:
    """No wait for the first ``free`` failures, then 2, 4, 8 … seconds, at most 15 minutes."""
    if failures < free:
        return timedelta(0)
    return timedelta(seconds=min(900, 2 ** (failures - free + 1)))


def _throttle_row(session: Session, key: str) -> LoginThrottle:
    row = session.get(LoginThrottle, key)
    if row is None:
        row = LoginThrottle(key=key, failures=0)
        session.add(row)
    return row


def authenticate(
    session: Session,
    *,
    username: str,
    password: str,
    address: str | None = None,
    now: datetime | None = None,
    free_attempts: int = 5,
) -> AuthResult:
    """Check a log-in. Failures are audited and slow the account and the address down
    (exponential back-off, never a permanent lock). The caller commits either way."""
    now = now or utcnow()
    keys = [f"user:{(username or '').strip().lower()}"] + ([f"addr:{address}"] if address else [])
    rows = [_throttle_row(session, k) for k in keys]
    waits = [
        math.ceil((r.throttled_until - now).total_seconds()) for r in rows if r.throttled_until
    ]
    if waits and max(waits) > 0:
        audit.record(
            session,
            actor=None,
            action="auth.login_throttled",
            entity_type="user",
            entity_id=None,
            detail=f"username={username!r} address={address}",
        )
        return AuthResult(False, reason="throttled", retry_after=max(waits))

    user = session.scalar(
        select(User).where(func.lower(User.username) == (username or "").strip().lower())
    )
    valid = False
    try:
        if user is not None and user.password_hash and user.active and user.role != Role.SYSTEM:
            valid = _hasher.verify(user.password_hash, password)
        else:
            _hasher.verify(_DUMMY_HASH, password or "")
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        valid = False

    if not valid:
        for row in rows:
            row.failures += 1
            row.last_failure_at = now
            delay = _throttle_delay(row.failures, free_attempts)
            row.throttled_until = now + delay if delay else None
        if user is not None:
            user.failed_logins += 1
        audit.record(
            session,
            actor=None,
            action="auth.login_failed",
            entity_type="user",
            entity_id=user.id if user else None,
            detail=f"username={username!r} address={address}",
        )
        session.flush()
        reason = "inactive" if user is not None and not user.active and valid else "invalid"
        return AuthResult(False, reason=reason)

    assert user is not None
    for row in rows:
        row.failures = 0
        row.throttled_until = None
    user.failed_logins = 0
    user.last_login_at = now
    if _hasher.check_needs_rehash(user.password_hash or ""):
        user.password_hash = hash_password(password)
    audit.record(
        session,
        actor=user,
        action="auth.login",
        entity_type="user",
        entity_id=user.id,
        detail=f"address={address}",
    )
    session.flush()
    return AuthResult(True, user=user)
