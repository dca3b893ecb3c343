"""The warning shown before a customer that looks like existing ones is saved: a dialog
listing the likely duplicates (name, how alike, a link to open each) with "Save anyway" and
"Cancel". It takes the candidates of ``crm_core.dedupe.store.check_customer`` and a callback;
it never touches the database."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from nicegui import ui

#: Fields whose change makes an edited customer worth checking for duplicates again.
IDENTITY_FIELDS = ("name", "phones", "emails", "company_name", "city", "street", "country")


class DuplicateWarning:
    """A dialog built once per page; ``ask`` fills it with candidates and opens it. Only
    "Save anyway" calls the ``on_save`` given to ``ask``; "Cancel" saves nothing."""

    def __init__(self, *, label: Callable[..., str]) -> None:
        self._ = label
        self._on_save: Callable[[], None] | None = None
        _ = label
        with ui.dialog() as self.dialog, ui.card().classes("w-full max-w-lg"):
            self.dialog.mark("duplicate-warning")
            ui.label(_("Possible duplicates")).classes("text-lg font-bold")
            ui.label(
                _("These customers look like the one you are saving. Open one to check it.")
            ).classes("text-sm text-grey-8")
            self.rows = ui.column().classes("w-full gap-1")
            with ui.row().classes("gap-2"):
                ui.button(_("Save anyway"), on_click=self._save).props("color=warning").mark(
                    "save-anyway"
                )
                ui.button(_("Cancel"), on_click=self._cancel).props("flat").mark("cancel-save")

    def ask(self, candidates: Sequence[Mapping[str, Any]], on_save: Callable[[], None]) -> None:
        """Show ``candidates`` (``[{"id", "name", "score"}]``); ``on_save`` runs on "Save
        anyway"."""
        _ = self._
        self._on_save = on_save
        self.rows.clear()
        with self.rows:
            for found in candidates:
                cid = int(found["id"])
                with ui.row().classes("w-full items-center gap-2 no-wrap").mark(f"duplicate-{cid}"):
                    ui.link(
                        str(found.get("name") or f"#{cid}"), f"/customers/{cid}", new_tab=True
                    ).classes("grow break-all").mark(f"duplicate-link-{cid}")
                    ui.badge(_("{score}% alike", score=round(100 * float(found["score"])))).props(
                        "outline"
                    ).mark(f"duplicate-score-{cid}")
        self.dialog.open()

    def _save(self) -> None:
        on_save, self._on_save = self._on_save, None
        self.dialog.close()
        if on_save is not None:
            on_save()

    def _cancel(self) -> None:
        self._on_save = None
        self.dialog.close()
