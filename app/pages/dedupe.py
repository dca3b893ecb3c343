"""Duplicate review: the queue of likely duplicate pairs side by side (differences
highlighted, values picked per field), merge, not a duplicate, defer, and undo from the merge
history. Every action is a ``crm_core.dedupe`` service call."""

from __future__ import annotations

from typing import Any

from nicegui import ui

from app.frame import PageContext, panel_page
from crm_core.dedupe import merge as merge_service
from crm_core.dedupe import review
from crm_core.dedupe.review import FieldDiff, QueueItem
from crm_core.i18n import translator

PAGE_SIZE = 10
FIELD_LABELS = {
    "name": "Name",
    "kind": "Kind",
    "company_name": "Company",
    "phones": "Phones",
    "emails": "E-mails",
    "country": "Country",
    "province": "Province",
    "city": "City",
    "district": "District",
    "street": "Street",
    "postcode": "Postcode",
    "birthday": "Birthday",
    "position": "Position",
    "industry": "Industry",
    "source": "Source",
    "lifecycle_stage": "Lifecycle stage",
    "value_tier": "Value tier",
    "owner_id": "Owner",
    "tags": "Tags",
    "notes": "Notes",
}
PICKABLE = frozenset(merge_service.MERGE_FIELDS)


def _t(ctx: PageContext):  # type: ignore[no-untyped-def]
    return translator(ctx.locale, "dedupe")


def _show(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return "" if value is None else str(value)


@panel_page(
    "/dedupe", title="Duplicates", icon="join_inner", permission="dedupe.review", group="Data"
)
def dedupe_page(ctx: PageContext) -> None:
    _ = _t(ctx)
    may_merge = ctx.can("dedupe.merge")
    with ui.row().classes("w-full items-center gap-2"):
        counts = ui.label().classes("text-sm text-grey-8").mark("dedupe-counts")
        ui.space()
        status = (
            ui.select(
                {
                    "open": _("To review"),
                    "deferred": _("Deferred"),
                    "not_duplicate": _("Not duplicates"),
                },
                value="open",
                on_change=lambda: refresh(),
            )
            .props("dense outlined")
            .mark("dedupe-status")
        )
        ui.button(_("Scan now"), icon="search", on_click=lambda: scan()).props("unelevated").mark(
            "dedupe-scan"
        )
        if may_merge:
            ui.button(_("Merge all above 0.99"), icon="done_all", on_click=lambda: accept()).props(
                "outline"
            ).mark("dedupe-accept")
    queue = ui.column().classes("w-full gap-3").mark("dedupe-queue")
    ui.label(_("Merge history")).classes("text-h6 mt-4")
    history = ui.column().classes("w-full gap-1").mark("dedupe-history")

    def scan() -> None:
        report = ctx.run(lambda s, actor: review.scan(s, actor=actor))
        if report is not None:
            ui.notify(
                _(
                    "{pairs} likely duplicate pairs among {customers} customers.",
                    pairs=report.pairs,
                    customers=report.customers,
                ),
                type="positive",
            )
            refresh()

    def accept() -> None:
        report = ctx.run(lambda s, actor: review.accept_above(s, actor=actor))
        if report is not None:
            ui.notify(_("{count} pairs merged.", count=len(report.merged)), type="positive")
            refresh()

    def decide(item: QueueItem, decision: str) -> None:
        done = ctx.run(
            lambda s, actor: review.decide(s, actor=actor, candidate_id=item.id, decision=decision),
            ok=_("Remembered as different customers.")
            if decision == "not_duplicate"
            else _("Kept for later."),
        )
        if done is not None:
            refresh()

    def merge(item: QueueItem, survivor: Any, picks: dict[str, Any]) -> None:
        choices = {f: int(t.value) for f, t in picks.items() if t.value}
        versions = {item.left.id: item.left.version, item.right.id: item.right.version}
        done = ctx.run(
            lambda s, actor: review.merge_candidate(
                s,
                actor=actor,
                candidate_id=item.id,
                survivor_id=int(survivor.value) if survivor.value else None,
                choices=choices,
                expected_versions=versions,
            )
        )
        if done is not None:
            ui.notify(
                _("Merged (merge {id}); it can be undone below.", id=done.id), type="positive"
            )
            refresh()

    def undo(merge_id: int) -> None:
        done = ctx.run(
            lambda s, actor: merge_service.undo_merge(s, actor=actor, merge_id=merge_id),
            ok=_("Merge {id} undone.", id=merge_id),
        )
        if done is not None:
            refresh()

    def field_row(item: QueueItem, f: FieldDiff, picks: dict[str, Any]) -> None:
        style = "bg-amber-1" if f.differs else ""
        label = _(FIELD_LABELS.get(f.field, f.field))
        with (
            ui.row()
            .classes(f"w-full items-center gap-2 no-wrap {style}")
            .mark(f"field-{item.id}-{f.field}" + ("-differs" if f.differs else ""))
        ):
            ui.label(label).classes("w-32 text-grey-8 text-sm")
            ui.label(_show(f.left)).classes("grow basis-0 break-all")
            ui.label(_show(f.right)).classes("grow basis-0 break-all")
            name = f.field
            pickable = name in PICKABLE or name.startswith("custom.")
            if (
                may_merge
                and pickable
                and f.differs
                and f.left not in (None, "")
                and f.right not in (None, "")
            ):
                picks[name] = (
                    ui.toggle({item.left.id: "◀", item.right.id: "▶", 0: _("auto")}, value=0)
                    .props("dense size=sm")
                    .mark(f"pick-{item.id}-{name}")
                )
            else:
                ui.label("").classes("w-24")

    def card(item: QueueItem) -> None:
        picks: dict[str, Any] = {}
        with ui.card().classes("w-full").mark(f"pair-{item.id}"):
            with ui.row().classes("w-full items-center gap-2"):
                ui.label(_("Score {score}", score=f"{item.score:.3f}")).classes("font-medium")
                ui.link(f"#{item.left.id} {item.left.name or ''}", f"/customers/{item.left.id}")
                ui.label("~")
                ui.link(f"#{item.right.id} {item.right.name or ''}", f"/customers/{item.right.id}")
            for f in item.fields:
                if f.differs or f.left not in (None, "", []) or f.right not in (None, "", []):
                    field_row(item, f, picks)
            if item.status in ("open", "deferred"):
                with ui.row().classes("w-full items-center gap-2"):
                    survivor = None
                    if may_merge:
                        ui.label(_("Keep record")).classes("text-sm")
                        survivor = (
                            ui.toggle(
                                {
                                    0: _("most complete"),
                                    item.left.id: f"#{item.left.id}",
                                    item.right.id: f"#{item.right.id}",
                                },
                                value=0,
                            )
                            .props("dense size=sm")
                            .mark(f"survivor-{item.id}")
                        )
                        ui.button(
                            _("Merge"),
                            icon="merge",
                            on_click=lambda s=survivor: merge(item, s, picks),
                        ).props("unelevated").mark(f"merge-{item.id}")
                    ui.button(
                        _("Not a duplicate"), on_click=lambda: decide(item, "not_duplicate")
                    ).props("outline").mark(f"not-duplicate-{item.id}")
                    if item.status == "open":
                        ui.button(_("Later"), on_click=lambda: decide(item, "defer")).props(
                            "flat"
                        ).mark(f"defer-{item.id}")

    def refresh() -> None:
        queue.clear()
        history.clear()
        data = ctx.run(
            lambda s, actor: (
                review.queue_counts(s, actor=actor),
                review.review_queue(s, actor=actor, status=status.value, limit=PAGE_SIZE),
                merge_service.list_merges(s, actor=actor, limit=20),
            )
        )
        if data is None:
            return
        numbers, items, merges = data
        counts.set_text(
            _(
                "{open} to review, {deferred} deferred, {merged} merged, {rejected} not duplicates",
                open=numbers["open"],
                deferred=numbers["deferred"],
                merged=numbers["merged"],
                rejected=numbers["not_duplicate"],
            )
        )
        with queue:
            if not items:
                ui.label(_("Nothing to review. Run a scan to look for duplicates.")).classes(
                    "text-grey-7"
                )
            for item in items:
                card(item)
        with history:
            if not merges:
                ui.label(_("No merges yet.")).classes("text-grey-7")
            for m in merges:
                with ui.row().classes("w-full items-center gap-2").mark(f"merge-row-{m.id}"):
                    losers = ", ".join(f"#{i}" for i in m.loser_ids)
                    ui.label(
                        _(
                            "Merge {id}: {losers} into #{survivor}",
                            id=m.id,
                            losers=losers,
                            survivor=m.survivor_id,
                        )
                    )
                    ui.label(ctx.dt(m.at)).classes("text-sm text-grey-7")
                    ui.space()
                    if m.undone_at is not None:
                        ui.label(_("undone")).classes("text-sm text-grey-7")
                    elif may_merge:
                        ui.button(_("Undo"), icon="undo", on_click=lambda m=m: undo(m.id)).props(
                            "outline dense"
                        ).mark(f"undo-{m.id}")

    refresh()


PAGES = (dedupe_page,)
