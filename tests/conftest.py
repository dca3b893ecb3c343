"""Shared fixtures: one real database per test, parametrised over SQLite and PostgreSQL.

PostgreSQL runs when ``CRM_TEST_POSTGRES_URL`` is set (``make test`` and ``.ci/run`` set it);
each test session then works in a database of its own, created and dropped here, so parallel
runs never disturb each other.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from crm_core import users as user_service
from crm_core.activities import ensure_pipeline_stages
from crm_core.db import Database
from crm_core.models import Base, Role, Team, User

PG_ENV = "CRM_TEST_POSTGRES_URL"
PASSWORD = "correct-horse-battery"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "postgres: runs against the real PostgreSQL server")
    # argon2id still, with light parameters so hundreds of test accounts hash quickly
    user_service._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for every test."""
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    db = Database(f"sqlite:///{path}")
    db.init()
    db.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test session."""
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is not set (make test sets it)")
    name = f"crm_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    db = Database(url)
    db.init()
    db.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _truncate_postgres(db: Database) -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with db.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A real, empty, migrated database (SQLite file or PostgreSQL)."""
    if backend == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        path = tmp_path / "crm.sqlite3"
        shutil.copy(template, path)
        database = Database(f"sqlite:///{path}")
    else:
        database = Database(request.getfixturevalue("postgres_url"))
        _truncate_postgres(database)
    with database.transaction() as session:
        ensure_pipeline_stages(session)
    yield database
    database.dispose()


@pytest.fixture
def sqlite_db(tmp_path: Path, sqlite_template: Path) -> Iterator[Database]:
    """A SQLite database only (for tests of SQLite-specific behaviour)."""
    path = tmp_path / "crm.sqlite3"
    shutil.copy(sqlite_template, path)
    database = Database(f"sqlite:///{path}")
    yield database
    database.dispose()


@dataclass
class Staff:
    """One user of every role; sales1 and the manager share team A, sales2 is in team B."""

    admin: User
    manager: User
    sales1: User
    sales2: User
    support: User
    steward: User
    analyst: User
    team_a: int
    team_b: int


def make_staff(db: Database) -> Staff:
    with db.transaction() as s:
        admin = user_service.create_user(
            s, actor=None, username="admin", role=Role.ADMIN, password=PASSWORD
        )
        team_a = user_service.create_team(s, actor=admin, name="Team A")
        team_b = user_service.create_team(s, actor=admin, name="Team B")

        def add(name: str, role: str, team: Team | None = None) -> User:
            return user_service.create_user(
                s,
                actor=admin,
                username=name,
                role=role,
                password=PASSWORD,
                team_id=team.id if team else None,
            )

        staff = Staff(
            admin=admin,
            manager=add("manager", Role.MANAGER, team_a),
            sales1=add("sales1", Role.SALES, team_a),
            sales2=add("sales2", Role.SALES, team_b),
            support=add("support", Role.SUPPORT),
            steward=add("steward", Role.DATA_STEWARD),
            analyst=add("analyst", Role.ANALYST),
            team_a=team_a.id,
            team_b=team_b.id,
        )
        s.flush()
        for user in vars(staff).values():
            if isinstance(user, User):
                s.refresh(user)
                _ = user.team
        s.expunge_all()
    return staff


@pytest.fixture
def staff(db: Database) -> Staff:
    return make_staff(db)
