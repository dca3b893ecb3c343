"""A customer's timeline: one card per event, newest first."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nicegui import ui

ICONS = {
    "interaction": "forum",
    "deal": "handshake",
    "order": "shopping_cart",
    "contract": "description",
    "ticket": "support_agent",
    "task": "task_alt",
}


def timeline_view(
    items: list[Any], *, label: Callable[[str], str], when: Callable[[Any], str]
) -> None:
    """Render ``TimelineItem``s; ``label`` translates kinds and statuses, ``when`` formats times."""
    if not items:
        ui.label(label("Nothing yet.")).classes("text-grey-7")
        return
    with ui.column().classes("w-full gap-1").mark("timeline"):
        for item in items:
            with ui.row().classes("w-full no-wrap items-start gap-2 py-1 border-b"):
                ui.icon(ICONS.get(item.kind, "event")).classes("text-primary mt-1")
                with ui.column().classes("gap-0 grow min-w-0"):
                    with ui.row().classes("gap-2 items-baseline"):
                        ui.label(item.title).classes("font-medium break-all")
                        if item.status:
                            ui.badge(label(item.status)).props("outline")
                    if item.detail:
                        ui.label(item.detail).classes("text-sm text-grey-8 break-all")
                    ui.label(f"{label(item.kind)} · {when(item.at)}").classes("text-xs text-grey-6")
