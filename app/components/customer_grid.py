"""The customer list grid (NiceGUI's AG Grid element): rows in, selection and clicks out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nicegui import ui

COLUMNS = ("name", "phone", "email", "company_name", "city", "stage", "owner", "tags", "updated")


def customer_grid(
    labels: dict[str, str],
    *,
    on_open: Callable[[int], None],
    on_select: Callable[[list[int]], None] | None = None,
) -> ui.aggrid:
    """An empty grid; fill it with ``set_rows``. Clicking a name calls ``on_open(id)``;
    ticking rows calls ``on_select(ids)`` with every ticked id (new rows clear the ticks)."""
    column_defs: list[dict[str, Any]] = [
        {"field": key, "headerName": labels.get(key, key), "sortable": False, "minWidth": 110}
        for key in COLUMNS
    ]
    column_defs[0].update({"minWidth": 150, "cellClass": "text-primary cursor-pointer"})
    options: dict[str, Any] = {
        "columnDefs": column_defs,
        "rowData": [],
        "defaultColDef": {"resizable": True, "suppressMovable": True},
        "suppressCellFocus": True,
        "domLayout": "autoHeight",
        "overlayNoRowsTemplate": labels.get("empty", "No customers"),
    }
    if on_select is not None:
        options["rowSelection"] = {"mode": "multiRow", "checkboxes": True, "headerCheckbox": True}
    grid = ui.aggrid(options, auto_size_columns=False).classes("w-full")
    grid.mark("customer-grid")
    grid.on(
        "cellClicked",
        lambda e: on_open(int(e.args)),
        js_handler="(e) => { if (e.colId === 'name' && e.data) emit(e.data.id) }",
    )
    selected: list[int] = []
    grid.selected_ids = selected  # type: ignore[attr-defined]
    if on_select is not None:

        def row_selected(args: dict[str, Any]) -> None:
            row_id = int(args["id"])
            if args.get("selected") and row_id not in selected:
                selected.append(row_id)
            elif not args.get("selected") and row_id in selected:
                selected.remove(row_id)
            on_select(list(selected))

        grid.on(
            "rowSelected",
            lambda e: row_selected(e.args),
            js_handler="(e) => { if (e.data) emit({id: e.data.id, selected: !!e.selected}) }",
        )
        grid.on("rowDataUpdated", lambda _: selected.clear())
    return grid


def set_rows(grid: ui.aggrid, rows: list[dict[str, Any]]) -> None:
    """Show new rows (ticks are cleared, as the browser's grid clears them)."""
    grid.selected_ids.clear()  # type: ignore[attr-defined]
    grid.options["rowData"] = rows
    grid.update()
