"""The ``crm`` command line (Typer): set-up, demo data, users, customers, backup, serve.

Every error prints one clear line on stderr and exits non-zero; never a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from crm_core import customers as customer_service
from crm_core import users as user_service
from crm_core.activities import ensure_pipeline_stages
from crm_core.db import Database, get_database
from crm_core.errors import CrmError, NotFound
from crm_core.models import Role, User
from crm_core.settings import get_settings

app = typer.Typer(
    help="A notebook-first CRM toolkit: set-up, data and operations.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
users_app = typer.Typer(help="Log-in accounts.", no_args_is_help=True)
customers_app = typer.Typer(help="Read customers (as an operator).", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(customers_app, name="customers")


def _db() -> Database:
    db = get_database()
    from crm_core.migrate import is_up_to_date

    if not is_up_to_date(db.engine):
        raise CrmError("the database is missing or out of date: run `crm init` first")
    return db


def _actor(session, username: str | None) -> User:  # type: ignore[no-untyped-def]
    """The user a command acts as: ``--as USER`` or the system user (full operator access)."""
    if not username:
        return user_service.get_system_user(session)
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.active:
        raise NotFound(f"user '{username}' does not exist or is inactive")
    return user


AsUser = Annotated[
    str | None, typer.Option("--as", help="Act as this user (default: the system operator).")
]


@app.command()
def init() -> None:
    """Create the database or upgrade it in place to the newest schema."""
    db = get_database()
    db.init()
    with db.transaction() as session:
        ensure_pipeline_stages(session)
        user_service.get_system_user(session)
    typer.echo(f"database ready: {db.engine.url.render_as_string(hide_password=True)}")


@app.command()
def demo(
    customers: Annotated[int, typer.Option(help="How many customers to generate.")] = 2000,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same data).")] = 42,
    if_empty: Annotated[bool, typer.Option(help="Only when no customer exists yet.")] = False,
    history: Annotated[bool, typer.Option(help="Generate interactions, deals, orders …")] = True,
) -> None:
    """Fill the database with generated demo data (Chinese and English customers)."""
    from crm_core.demo import is_empty, load_demo

    db = _db()
    with db.transaction() as session:
        empty = is_empty(session)
    if if_empty and not empty:
        typer.echo("demo data skipped: the database already holds customers")
        return
    summary = load_demo(db, n_customers=customers, seed=seed, history=history)
    typer.echo(
        f"demo data loaded: {summary.customers} customers, {summary.users} users, "
        f"{summary.interactions} interactions, {summary.deals} deals, {summary.orders} orders, "
        f"{summary.tickets} tickets, {summary.tasks} tasks in {summary.seconds:.1f} s"
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 0,
) -> None:
    """Start the web panel (http://127.0.0.1:8080 by default)."""
    settings = get_settings()
    _db()
    from app.main import run

    run(host=host or settings.host, port=port or settings.port)


# ---------------------------------------------------------------- users


@users_app.command("add")
def users_add(
    username: Annotated[str, typer.Option(help="Log-in name.")],
    role: Annotated[
        str, typer.Option(help="admin, manager, sales, support, data_steward, analyst")
    ],
    password_stdin: Annotated[bool, typer.Option(help="Read the password from stdin.")] = False,
    team: Annotated[str | None, typer.Option(help="Team name (created if missing).")] = None,
    display_name: Annotated[str, typer.Option(help="Name shown in the panel.")] = "",
) -> None:
    """Create a log-in account. The password comes from stdin or is generated and shown once."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = user_service.generate_password()
    db = _db()
    with db.transaction() as session:
        has_admin = session.scalar(
            select(User.id).where(User.role == Role.ADMIN, User.active.is_(True))
        )
        if not has_admin and role != Role.ADMIN:
            raise CrmError("create an admin first: the first account must be an admin")
        actor = _SystemAdmin(user_service.get_system_user(session)) if has_admin else None
        team_id = None
        if team:
            existing = {t.name: t.id for t in user_service.list_teams(session)}
            team_id = existing.get(team)
            if team_id is None and actor is not None:
                team_id = user_service.create_team(session, actor=actor, name=team).id
        user = user_service.create_user(
            session,
            actor=actor,
            username=username,
            role=role,
            password=password,
            display_name=display_name,
            team_id=team_id,
        )
    typer.echo(f"user '{user.username}' created with role {user.role}")
    if not password_stdin:
        typer.echo(f"password (shown once): {password}")


class _SystemAdmin:
    """The operator acting through the command line: the system user with admin rights."""

    def __init__(self, user: User) -> None:
        self.id = user.id
        self.username = user.username
        self.role = Role.ADMIN
        self.team_id = None


def run_as(username: str | None, work: Callable[[Any, Any], None]) -> None:
    """Run ``work(session, actor)`` in one transaction as ``username`` (default: the system
    operator with admin rights); service errors print one line and exit with code 1."""
    try:
        db = _db()
        with db.transaction() as session:
            actor: Any = _actor(session, username)
            if username is None and actor.role == Role.SYSTEM:
                actor = _SystemAdmin(actor)
            work(session, actor)
    except CrmError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None


@users_app.command("bootstrap-admin")
def users_bootstrap_admin(
    username: Annotated[str, typer.Option(help="Log-in name of the first admin.")] = "admin",
) -> None:
    """Create the first admin with a generated password, printed once; nothing if one exists."""
    db = _db()
    with db.transaction() as session:
        exists = session.scalar(select(User.id).where(User.role == Role.ADMIN))
        if exists:
            typer.echo("an admin account exists already; nothing to do")
            return
        password = user_service.generate_password()
        user_service.create_user(
            session,
            actor=None,
            username=username,
            role=Role.ADMIN,
            password=password,
            display_name="Administrator",
        )
    typer.echo("=" * 64)
    typer.echo(f"First admin account created: username '{username}'")
    typer.echo(f"Password (shown only this once, write it down): {password}")
    typer.echo("=" * 64)


@users_app.command("list")
def users_list() -> None:
    """List log-in accounts."""
    db = _db()
    with db.transaction() as session:
        operator = _SystemAdmin(user_service.get_system_user(session))
        for user in user_service.list_users(session, actor=operator):  # type: ignore[arg-type]
            team = user.team.name if user.team else "-"
            state = "active" if user.active else "inactive"
            typer.echo(f"{user.id:>5}  {user.username:<20} {user.role:<13} {team:<16} {state}")


# ---------------------------------------------------------------- customers


def _print_customer_line(c: customer_service.CustomerOut) -> None:
    archived = " [archived]" if c.archived_at else ""
    typer.echo(
        f"{c.id:>8}  {c.name or '':<24} {c.phone or '-':<16} {c.email or '-':<30} "
        f"{c.city or '-':<12} {c.lifecycle_stage or ''}{archived}"
    )


@customers_app.command("list")
def customers_list(
    limit: Annotated[int, typer.Option(help="How many rows.")] = 20,
    archived: Annotated[bool, typer.Option(help="List archived customers instead.")] = False,
    as_user: AsUser = None,
) -> None:
    """The most recently changed customers."""
    db = _db()
    with db.transaction() as session:
        actor = _actor(session, as_user)
        page = customer_service.list_customers(
            session,
            actor=actor,
            filters=customer_service.CustomerFilter(archived=archived),
            limit=limit,
        )
        for c in page.items:
            _print_customer_line(c)


@customers_app.command("search")
def customers_search(
    query: Annotated[str, typer.Argument(help="Name part, pinyin, phone or email.")],
    limit: Annotated[int, typer.Option(help="How many rows.")] = 20,
    as_user: AsUser = None,
) -> None:
    """Find customers by part of a name, pinyin, phone in any format, or email."""
    db = _db()
    with db.transaction() as session:
        actor = _actor(session, as_user)
        hits = customer_service.search_customers(session, actor=actor, query=query, limit=limit)
        if not hits:
            typer.echo("no customer found")
        for c in hits:
            _print_customer_line(c)


@customers_app.command("show")
def customers_show(
    customer_id: Annotated[int, typer.Argument(help="Customer id.")],
    as_user: AsUser = None,
) -> None:
    """Everything about one customer and its latest history."""
    from crm_core.activities import timeline

    db = _db()
    with db.transaction() as session:
        actor = _actor(session, as_user)
        c = customer_service.get_customer(session, actor=actor, customer_id=customer_id)
        for key, value in c.model_dump().items():
            if value not in (None, [], {}):
                typer.echo(f"{key:>16}: {value}")
        items = timeline(session, actor=actor, customer_id=customer_id, limit=20)
        if items:
            typer.echo("timeline:")
        for item in items:
            typer.echo(f"  {item.at:%Y-%m-%d} {item.kind:<11} {item.title} {item.status}")


# ---------------------------------------------------------------- backup


@app.command()
def backup(
    output: Annotated[Path, typer.Option(help="Folder for the backup file.")] = Path("backups"),
) -> None:
    """Write a consistent copy of the live database with a SHA-256 manifest."""
    from crm_core.backup import create_backup

    target = create_backup(get_settings().resolved_database_url, output)
    typer.echo(f"backup written: {target} (manifest {target.name}.manifest.json)")


@app.command()
def restore(
    file: Annotated[Path, typer.Argument(help="A backup file made by `crm backup`.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Verify a backup's checksum and integrity, then replace the database with it."""
    from crm_core.backup import restore_backup, verify_backup

    verify_backup(file)
    if not yes and not typer.confirm("Replace the current database with this backup?"):
        raise typer.Exit(1)
    from crm_core.db import forget_databases

    forget_databases()
    manifest = restore_backup(file, get_settings().resolved_database_url)
    typer.echo(f"restored {file.name} (made {manifest['created_at']}, checksum verified)")


def _mount_optional() -> None:
    """Sub-commands of areas that live beside their services."""
    import importlib

    for module, attr, name in (
        ("crm_core.automation.cli", "automate_app", "automate"),
        ("crm_core.automation.cli", "archive_app", "archive"),
        ("crm_core.dedupe.cli", "dedupe_app", "dedupe"),
        ("crm_core.importing.cli", "import_app", "import"),
        ("crm_core.importing.cli", "export_app", "export"),
        ("crm_core.lowcode.cli", "modules_app", "modules"),
    ):
        try:
            sub = getattr(importlib.import_module(module), attr)
        except ModuleNotFoundError as exc:
            if exc.name and module.startswith(exc.name):
                continue  # that area is not installed yet
            raise
        except AttributeError:
            continue
        app.add_typer(sub, name=name)


_mount_optional()


def main() -> None:
    """Entry point of the ``crm`` script: one clear line per error, never a traceback."""
    try:
        # without standalone mode click returns (not raises) the code of ``typer.Exit``
        sys.exit(app(standalone_mode=False) or 0)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        typer.echo("aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except CrmError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        typer.echo(f"error: database: {reason}", err=True)
        sys.exit(1)
    except (OSError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
