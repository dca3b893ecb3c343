"""``crm modules …`` (mounted by ``crm_core.cli``): custom modules from the command line.

crm modules list                                  # modules the user may read
crm modules show projects                         # names, permissions and fields
crm modules export projects projects.xlsx         # records as .csv or .xlsx (by the suffix)
crm modules import projects new.csv --user alice  # all or nothing; CSV (UTF-8/GBK) or .xlsx

Every command acts as ``--user`` (default: the system operator, with admin rights) under the
same permissions and audit trail as the panel. Errors print one line and exit with code 1.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer

from crm_core.errors import InvalidInput

UserOption = Annotated[
    str | None,
    typer.Option(
        "--user", "--as", help="Act as this user (default: the system operator, as admin)."
    ),
]
ModuleName = Annotated[str, typer.Argument(help="The module's key, e.g. projects.")]

modules_app = typer.Typer(
    help="Custom modules: list, show, export and import records.", no_args_is_help=True
)


def _run(username: str | None, work: Callable[[Any, Any], None]) -> None:
    """Run ``work(session, actor)`` in one transaction (see ``crm_core.cli.run_as``)."""
    from crm_core.cli import run_as

    try:
        run_as(username, work)
    except OSError as exc:
        typer.echo(f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), err=True)
        raise typer.Exit(1) from None


def _format(path: Path) -> str:
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("csv", "xlsx"):
        raise InvalidInput(f"'{path.name}' must end in .csv or .xlsx", field="file")
    return fmt


@modules_app.command("list")
def list_cmd(user: UserOption = None) -> None:
    """The modules the user may read: key, English and Chinese name, number of fields."""
    from crm_core.lowcode.modules import list_modules, module_fields

    def work(session: Any, actor: Any) -> None:
        found = list_modules(session, actor=actor)
        if not found:
            typer.echo("no module")
        for m in found:
            fields = len(module_fields(session, m))
            typer.echo(f"{m.key:<20} {m.name_en:<24} {m.name_zh or '-':<12} {fields} fields")

    _run(user, work)


@modules_app.command("show")
def show_cmd(name: ModuleName, user: UserOption = None) -> None:
    """A module's names, display field, role permissions and fields (retired ones marked)."""
    from crm_core.lowcode import permissions as perms
    from crm_core.lowcode.modules import field_specs, get_module

    def work(session: Any, actor: Any) -> None:
        module = get_module(session, name)
        perms.require(actor, module, "read")
        typer.echo(f"{'key':>14}: {module.key}")
        typer.echo(f"{'name':>14}: {module.name_en} / {module.name_zh or '-'}")
        typer.echo(f"{'display field':>14}: {module.display_field or '-'}")
        for action in perms.ACTIONS:
            roles = (module.permissions or perms.DEFAULT_PERMISSIONS).get(action, [])
            typer.echo(f"{action:>14}: {', '.join(roles)}")
        typer.echo("fields:")
        for spec in field_specs(session, module, include_retired=True):
            flags = [
                flag
                for flag, on in (
                    ("required", spec.required),
                    ("unique", spec.unique),
                    ("retired", not spec.active),
                )
                if on
            ]
            extra = ""
            if spec.choices:
                extra = f" [{', '.join(spec.choices)}]"
            if spec.link_module:
                extra = f" -> {spec.link_module}"
            typer.echo(
                f"  {spec.key:<20} {spec.field_type:<12} {spec.label_en}"
                f"{' (' + ', '.join(flags) + ')' if flags else ''}{extra}"
            )

    _run(user, work)


@modules_app.command("export")
def export_cmd(
    name: ModuleName,
    file: Annotated[Path, typer.Argument(help="Target file: .csv (UTF-8) or .xlsx.")],
    archived: Annotated[
        bool, typer.Option(help="Include archived records (default: active only).")
    ] = False,
    user: UserOption = None,
) -> None:
    """Write the records the user may see to a file that `crm modules import` reads back."""
    from crm_core.importing.export import neutralise
    from crm_core.lowcode.records import RecordFilter, export_records

    def work(session: Any, actor: Any) -> None:
        fmt = _format(file)
        filters = RecordFilter(archived=None if archived else False)
        frame = export_records(session, actor=actor, module_key=name, filters=filters)
        for column in frame.columns:
            if frame[column].dtype == object:
                frame[column] = [neutralise(v) for v in frame[column]]
        if fmt == "csv":
            frame.to_csv(file, index=False, encoding="utf-8-sig")
        else:  # spreadsheets take times without a zone (UTC here)
            for column in ("archived_at", "created_at", "updated_at"):
                frame[column] = pd.to_datetime(frame[column], utc=True).dt.tz_localize(None)
            frame.to_excel(file, index=False, sheet_name=name[:31])
        typer.echo(f"{len(frame)} records of '{name}' written to {file}")

    _run(user, work)


def _read(file: Path) -> pd.DataFrame:
    from crm_core.importing.reading import iter_chunks, open_source

    if not file.is_file():
        raise InvalidInput(f"file {file} does not exist", field="file")
    spool, info = open_source(file)
    with spool:
        chunks = [chunk.frame() for chunk in iter_chunks(spool, info)]
    return pd.concat(chunks, ignore_index=True) if len(chunks) > 1 else chunks[0]


@modules_app.command("import")
def import_cmd(
    name: ModuleName,
    file: Annotated[Path, typer.Argument(help="CSV (UTF-8 or GBK) or .xlsx; one row a record.")],
    user: UserOption = None,
) -> None:
    """Create one record per row (columns named by field key or label): all or nothing."""
    from crm_core.lowcode.records import import_records

    def work(session: Any, actor: Any) -> None:
        frame = _read(file)
        created = import_records(session, actor=actor, module_key=name, frame=frame, source="cli")
        typer.echo(f"{len(created)} records imported into '{name}'")

    _run(user, work)
