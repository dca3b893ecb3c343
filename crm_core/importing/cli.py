"""``crm import …`` and ``crm export …`` (mounted by ``crm_core.cli``).

crm import customers.csv --dry-run              # preview: counts, invalid rows, duplicates
crm import customers.csv --mode upsert          # all rows or nothing
crm import customers.csv --valid-only --rejects fix-me.csv
crm import revert 12
crm export customers --format xlsx --output customers.xlsx --city 杭州
crm export subject 42 --output person-42.json   # PIPL / GDPR access request
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from typer.core import TyperGroup

from crm_core.customers import CustomerFilter
from crm_core.errors import InvalidInput
from crm_core.importing import batches
from crm_core.importing import export as export_mod
from crm_core.importing import mapping as mapping_mod
from crm_core.importing.batches import ImportOptions, ImportRejected, ImportReport
from crm_core.models import Role

AsUser = Annotated[
    str | None, typer.Option("--as", help="Act as this user (default: the system operator).")
]


class _FileByDefault(TyperGroup):
    """``crm import FILE …`` runs the ``file`` command; ``crm import revert 3`` the other ones."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and not (set(args) & set(self.commands)) and args[0] not in ("--help", "-h"):
            args = ["file", *args]
        return super().parse_args(ctx, args)


import_app = typer.Typer(
    cls=_FileByDefault,
    help="Import customers from CSV or .xlsx: `crm import FILE [--dry-run]`, `crm import revert N`.",
    no_args_is_help=True,
)
export_app = typer.Typer(
    help="Export customers, history, or one person's data.", no_args_is_help=True
)


def _session_actor(session: Any, username: str | None, *, operator_as_admin: bool = False) -> Any:
    from crm_core.cli import _actor, _SystemAdmin

    actor = _actor(session, username)
    if username is None and operator_as_admin and actor.role == Role.SYSTEM:
        return _SystemAdmin(actor)
    return actor


def _db() -> Any:
    from crm_core.cli import _db as lead_db

    return lead_db()


def _load_mapping(session: Any, actor: Any, value: str | None) -> tuple[dict[str, Any] | None, Any]:
    """A mapping from a JSON file ``{header: target}`` or a saved mapping's name."""
    if not value:
        return None, None
    path = Path(value)
    if path.suffix.lower() == ".json" and path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidInput(
                f"'{value}' is not a JSON mapping ({exc})", field="mapping"
            ) from None
        if not isinstance(data, dict):
            raise InvalidInput("the mapping file must hold {header: field}", field="mapping")
        return data, None
    saved = mapping_mod.load_mapping(session, actor=actor, name=value)
    return dict(saved.columns), saved


def _print_report(report: ImportReport, limit: int = 20) -> None:
    typer.echo(
        f"file: {report.file_name} ({report.file_format}"
        + (f", {report.encoding}" if report.encoding else "")
        + (f", sheet {report.sheet}" if report.sheet else "")
        + ")"
    )
    typer.echo("mapping:")
    for header, target in report.mapping.items():
        typer.echo(f"  {header} -> {target}")
    ignored = [h for h in report.headers if h not in report.mapping]
    if ignored:
        typer.echo(f"  ignored: {', '.join(ignored)}")
    keys = ", ".join(report.key_columns) or "none (create only)"
    typer.echo(f"mode: {report.mode}, matched by: {keys}")
    if report.already_imported:
        batch_ids = ", ".join(str(b) for b in report.already_imported)
        typer.echo(f"note: this very file was imported before (batch {batch_ids})")
    for issue in report.issues[:limit]:
        typer.echo(f"  invalid  line {issue.line}: {issue.field}: {issue.message}")
    if len(report.issues) > limit or report.invalid > limit:
        typer.echo(f"  … {report.invalid} invalid rows in all")
    for skip in report.skips[:limit]:
        typer.echo(f"  skipped  line {skip.line}: {skip.message}")
    for hint in report.duplicates[:limit]:
        other = (
            f"line {hint.other_line}"
            if hint.other_line
            else f"existing customer {hint.customer_id}"
        )
        typer.echo(f"  duplicate? line {hint.line} ~ {other} ({hint.reason}, {hint.score:.2f})")
    for flag in report.erased[:limit]:
        typer.echo(f"  erased?  line {flag.line}: {flag.field} {flag.message}")
    if report.duplicates_note:
        typer.echo(f"note: {report.duplicates_note}")
    typer.echo(report.summary() + f" ({report.seconds:.1f} s)")


@import_app.command("file", hidden=True)
def import_file(
    file: Annotated[Path, typer.Argument(help="A CSV or .xlsx file.")],
    mapping: Annotated[
        str | None,
        typer.Option(help="A saved mapping's name or a JSON file {header: field}."),
    ] = None,
    mode: Annotated[str, typer.Option(help="create, update or upsert.")] = "upsert",
    match_key: Annotated[str, typer.Option(help="auto, id, external_id, email or phone.")] = "auto",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Preview only; write nothing.")
    ] = False,
    valid_only: Annotated[
        bool, typer.Option("--valid-only", help="Import the valid rows, return the invalid ones.")
    ] = False,
    rejects: Annotated[
        Path | None, typer.Option(help="Write the invalid rows here (CSV) to fix them.")
    ] = None,
    encoding: Annotated[
        str | None, typer.Option(help="Text encoding of a CSV (detected when not given).")
    ] = None,
    sheet: Annotated[str | None, typer.Option(help="Sheet of an .xlsx (default: first).")] = None,
    save_mapping: Annotated[
        str | None, typer.Option(help="Save the mapping used under this name.")
    ] = None,
    as_user: AsUser = None,
) -> None:
    """Import customers from FILE (see `crm import --help`)."""
    db = _db()
    report: ImportReport | None = None
    try:
        with db.transaction() as session:
            actor = _session_actor(session, as_user)
            columns, saved = _load_mapping(session, actor, mapping)
            options = ImportOptions(
                mode=saved.mode if saved is not None and saved.mode and mode == "upsert" else mode,
                match_key=(
                    saved.match_key
                    if saved is not None and saved.match_key and match_key == "auto"
                    else match_key
                ),
                mapping=columns,
                encoding=encoding,
                sheet=sheet,
                all_or_nothing=not valid_only,
            )
            report = batches.run_import(
                session,
                actor=actor,
                source=file,
                file_name=file.name,
                options=options,
                dry_run=dry_run,
            )
            if save_mapping:
                mapping_mod.save_mapping(
                    session,
                    actor=actor,
                    name=save_mapping,
                    columns=report.mapping,
                    mode=options.mode,
                    match_key=options.match_key,
                )
    except ImportRejected as exc:
        _print_report(exc.report)
        _write_rejects(exc.report, rejects)
        raise
    assert report is not None
    _print_report(report)
    _write_rejects(report, rejects)
    if not dry_run:
        typer.echo(
            f"batch {report.batch_id} committed (undo with `crm import revert {report.batch_id}`)"
        )


def _write_rejects(report: ImportReport, path: Path | None) -> None:
    data = report.rejects_csv()
    if path is not None and data:
        path.write_bytes(data)
        typer.echo(f"invalid rows written to {path}")


@import_app.command("revert")
def import_revert(
    batch: Annotated[int, typer.Argument(help="The batch number `crm import` printed.")],
    reason: Annotated[str | None, typer.Option(help="Why (kept in the audit trail).")] = None,
    as_user: AsUser = None,
) -> None:
    """Undo an import: remove the customers it created, restore the ones it updated."""
    db = _db()
    with db.transaction() as session:
        actor = _session_actor(session, as_user)
        result = batches.revert_batch(session, actor=actor, batch_id=batch, reason=reason)
    typer.echo(
        f"batch {result.batch_id} reverted: {result.removed} customers removed, "
        f"{result.restored} restored"
    )


@import_app.command("batches")
def import_batches(
    limit: Annotated[int, typer.Option(help="How many.")] = 20,
    as_user: AsUser = None,
) -> None:
    """The latest import batches."""
    db = _db()
    with db.transaction() as session:
        actor = _session_actor(session, as_user)
        for b in batches.list_batches(session, actor=actor, limit=limit):
            typer.echo(
                f"{b.id:>6}  {b.created_at:%Y-%m-%d %H:%M}  {b.status:<9} {b.mode:<6} "
                f"+{b.created_count} ~{b.updated_count} ={b.unchanged_count} "
                f"!{b.invalid_count}  {b.file_name}"
            )


@import_app.command("mappings")
def import_mappings(as_user: AsUser = None) -> None:
    """The saved column mappings."""
    db = _db()
    with db.transaction() as session:
        actor = _session_actor(session, as_user)
        for m in mapping_mod.list_mappings(session, actor=actor):
            typer.echo(f"{m.name}: {json.dumps(m.columns, ensure_ascii=False)}")


# ---------------------------------------------------------------- export


def _filters(**kwargs: Any) -> CustomerFilter:
    archived = kwargs.pop("archived")
    return CustomerFilter(
        archived={"no": False, "yes": True, "all": None}[archived],
        **{k: v for k, v in kwargs.items() if v not in (None, "")},
    )


@export_app.command("list")
def export_list(
    kind: Annotated[str, typer.Argument(help="customers, interactions, deals, orders or tickets.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv or xlsx.")] = "csv",
    query: Annotated[str | None, typer.Option(help="Quick search text.")] = None,
    city: Annotated[str | None, typer.Option(help="Only this city.")] = None,
    tag: Annotated[str | None, typer.Option(help="Only customers with this tag.")] = None,
    lifecycle_stage: Annotated[str | None, typer.Option(help="Only this stage.")] = None,
    industry: Annotated[str | None, typer.Option(help="Only this industry.")] = None,
    source: Annotated[str | None, typer.Option(help="Only this source.")] = None,
    owner_id: Annotated[int | None, typer.Option(help="Only this owner's.")] = None,
    archived: Annotated[str, typer.Option(help="no, yes or all.")] = "no",
    as_user: AsUser = None,
) -> None:
    """Write a filtered list as CSV or .xlsx (the access rules of the acting user apply)."""
    if archived not in ("no", "yes", "all"):
        raise InvalidInput("is not no, yes or all", field="archived")
    filters = _filters(
        query=query,
        city=city,
        tag=tag,
        lifecycle_stage=lifecycle_stage,
        industry=industry,
        source=source,
        owner_id=owner_id,
        archived=archived if kind == "customers" or archived != "no" else "all",
    )
    target = output or Path(f"{kind}-{datetime.now():%Y%m%d-%H%M%S}.{fmt}")
    db = _db()
    with db.transaction() as session, target.open("wb") as fh:
        actor = _session_actor(session, as_user, operator_as_admin=True)
        result = export_mod.export(
            session, actor=actor, kind=kind, target=fh, fmt=fmt, filters=filters
        )
    typer.echo(f"{result.rows} {kind} written to {target}")


for _kind in export_mod.KINDS:

    def _make(kind: str) -> None:
        @export_app.command(kind, help=f"Shortcut for `crm export list {kind} …`.")
        def _command(
            output: Annotated[Path | None, typer.Option("--output", "-o")] = None,
            fmt: Annotated[str, typer.Option("--format", help="csv or xlsx.")] = "csv",
            query: Annotated[str | None, typer.Option(help="Quick search text.")] = None,
            city: Annotated[str | None, typer.Option(help="Only this city.")] = None,
            tag: Annotated[str | None, typer.Option(help="Only this tag.")] = None,
            lifecycle_stage: Annotated[str | None, typer.Option(help="Only this stage.")] = None,
            archived: Annotated[str, typer.Option(help="no, yes or all.")] = "no",
            as_user: AsUser = None,
        ) -> None:
            export_list(
                kind,
                output=output,
                fmt=fmt,
                query=query,
                city=city,
                tag=tag,
                lifecycle_stage=lifecycle_stage,
                industry=None,
                source=None,
                owner_id=None,
                archived=archived,
                as_user=as_user,
            )

    _make(_kind)


@export_app.command("subject")
def export_subject(
    customer_id: Annotated[int, typer.Argument(help="The person's customer id.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="JSON file to write.")
    ] = None,
    as_user: AsUser = None,
) -> None:
    """Everything stored about one person as JSON (PIPL / GDPR access request)."""
    target = output or Path(f"subject-{customer_id}.json")
    db = _db()
    with db.transaction() as session:
        actor = _session_actor(session, as_user, operator_as_admin=True)
        data = export_mod.subject_export_json(session, actor=actor, customer_id=customer_id)
    target.write_bytes(data)
    typer.echo(f"data of customer {customer_id} written to {target} ({len(data)} bytes)")
