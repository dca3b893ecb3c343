"""``crm automate …`` and ``crm archive …`` (mounted by ``crm_core.cli``).

``crm automate run`` is what cron or a systemd timer calls, e.g. every 5 minutes::

    */5 * * * *  crm automate run
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from crm_core import automation as auto
from crm_core.db import Database, get_database
from crm_core.errors import CrmError, InvalidInput
from crm_core.models import AutomationState, User, utcnow

automate_app = typer.Typer(
    help="Automation rules: list, run due rules, dry run.", no_args_is_help=True
)
archive_app = typer.Typer(help="Cold archive of archived customers.", no_args_is_help=True)

RuleOption = Annotated[
    list[str] | None, typer.Option("--rule", "-r", help="Only this rule (key or id); repeatable.")
]
NowOption = Annotated[
    str | None, typer.Option("--now", help="Run as if it were this UTC time (ISO 8601).")
]
AsUser = Annotated[
    str | None, typer.Option("--as", help="Act as this user (default: the system operator).")
]


def _db() -> Database:
    from crm_core.migrate import is_up_to_date

    db = get_database()
    if not is_up_to_date(db.engine):
        raise CrmError("the database is missing or out of date: run `crm init` first")
    return db


def _now(value: str | None) -> datetime:
    if not value:
        return utcnow()
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            f"'{value}' is not an ISO time such as 2026-05-01T08:00", field="now"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _actor(session, username: str | None) -> User:  # type: ignore[no-untyped-def]
    from crm_core.cli import _actor as lead_actor

    return lead_actor(session, username)


@automate_app.command("list")
def list_rules() -> None:
    """Every rule: id, key, on/off, trigger, the day it last ran, name."""
    db = _db()
    with db.transaction() as s:
        system = _actor(s, None)
        rules = auto.list_rules(s, actor=system)
        typer.echo(f"{'id':>4}  {'key':<20} {'on':<3} {'trigger':<17} {'last run':<11} name")
        for rule in rules:
            state = s.get(AutomationState, rule.id)
            last = state.last_run_day.isoformat() if state and state.last_run_day else "-"
            typer.echo(
                f"{rule.id:>4}  {(rule.key or '-'):<20} {'on' if rule.enabled else 'off':<3} "
                f"{rule.trigger:<17} {last:<11} {rule.name}"
            )


@automate_app.command("run")
def run(
    rule: RuleOption = None,
    force: Annotated[bool, typer.Option("--force", help="Run even if not due.")] = False,
    now: NowOption = None,
    no_email: Annotated[
        bool, typer.Option("--no-email", help="Do not send queued e-mail.")
    ] = False,
) -> None:
    """Run the rules that are due once (safe to call often: leases and events prevent doubles)."""
    db = _db()
    results = auto.run_due(db, now=_now(now), rules=rule or None, force=force, deliver=not no_email)
    failed = False
    for r in results:
        if r.status in ("not_due", "idle"):
            continue
        actions = ", ".join(f"{k} {v}" for k, v in sorted(r.summary.items())) or "no actions"
        typer.echo(f"{r.rule_key:<20} {r.status:<8} matched {r.matched:>7}  {actions}")
        for error in r.errors[:5]:
            typer.echo(f"    error: {error}", err=True)
        failed = failed or r.status == "error"
    if not any(r.status not in ("not_due", "idle") for r in results):
        typer.echo("nothing due")
    if failed:
        raise typer.Exit(2)


@automate_app.command("dry-run")
def dry_run(rule: RuleOption = None, now: NowOption = None) -> None:
    """Show what the rules would do now, without doing it."""
    db = _db()
    for preview in auto.dry_run(db, now=_now(now), rules=rule or None):
        typer.echo(f"{preview.rule}: {preview.matched} new match(es)")
        for action in preview.actions:
            typer.echo(f"    would {action}")
        for item in preview.sample[:5]:
            typer.echo(f"    e.g. #{item['id']} {item['name']}")


@automate_app.command("enable")
def enable(rule: Annotated[str, typer.Argument(help="Rule key or id.")]) -> None:
    """Switch a rule on."""
    _switch(rule, True)


@automate_app.command("disable")
def disable(rule: Annotated[str, typer.Argument(help="Rule key or id.")]) -> None:
    """Switch a rule off."""
    _switch(rule, False)


def _switch(key: str, enabled: bool) -> None:
    db = _db()
    with db.transaction() as s:
        system = _actor(s, None)
        found = auto.get_rule(s, actor=system, rule=key)
        auto.set_enabled(s, actor=system, rule_id=found.id, enabled=enabled)
        typer.echo(f"{found.key or found.id}: {'on' if enabled else 'off'}")


@archive_app.command("export")
def export(
    directory: Annotated[Path, typer.Argument(help="An empty directory for the archive.")],
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv.")] = "parquet",
    before: Annotated[
        str | None, typer.Option("--before", help="Only customers archived before this date.")
    ] = None,
    purge: Annotated[
        bool, typer.Option("--purge", help="Remove them from the database after writing.")
    ] = False,
    as_user: AsUser = None,
) -> None:
    """Export archived customers (and their history) with a checksummed manifest."""
    from crm_core.cold_archive import export_archived

    db = _db()
    with db.transaction() as s:
        manifest = export_archived(
            s,
            actor=_actor(s, as_user),
            directory=directory,
            fmt=fmt,
            archived_before=_now(before) if before else None,
            purge=purge,
        )
    rows = sum(int(t["rows"]) for t in manifest.tables.values())
    typer.echo(
        f"exported {manifest.customers} customers ({rows} rows) to {directory}"
        + (" and removed them from the database" if purge else "")
    )


@archive_app.command("restore")
def restore(
    directory: Annotated[Path, typer.Argument(help="A directory written by `crm archive export`.")],
    as_user: AsUser = None,
) -> None:
    """Verify an archive's checksums and put its customers back (still archived)."""
    from crm_core.cold_archive import restore_archive

    db = _db()
    with db.transaction() as s:
        report = restore_archive(s, actor=_actor(s, as_user), directory=directory)
    typer.echo(f"restored {report.customers} customers from {directory} (checksums verified)")
