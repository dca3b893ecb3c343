"""Pipeline board: deals by stage with count and amount, filtered by owner and team; move a
deal, mark it won or lost with a reason."""

from __future__ import annotations

from nicegui import ui

from app.frame import PageContext, panel_page
from crm_core import activities, users
from crm_core.customers import customer_names


@panel_page("/pipeline", title="Pipeline", icon="view_kanban", permission="deal.write")
def pipeline_page(ctx: PageContext) -> None:
    _ = ctx._
    people = ctx.run(
        lambda s, actor: (
            {u.id: u.display_name or u.username for u in users.list_users(s, actor=actor)},
            {t.id: t.name for t in users.list_teams(s)},
        )
    )
    owners, teams = people or ({}, {})
    with ui.row().classes("w-full items-center gap-2"):
        owner = ui.select({0: _("All owners"), **owners}, value=0, label=_("Owner"))
        owner.props("dense outlined").classes("min-w-[10rem]").mark("pipeline-owner")
        team = ui.select({0: _("All teams"), **teams}, value=0, label=_("Team"))
        team.props("dense outlined").classes("min-w-[10rem]").mark("pipeline-team")
    owner.on_value_change(lambda: board.refresh())
    team.on_value_change(lambda: board.refresh())

    def move(deal_id: int, version: int, stage: str, reason: str | None = None) -> None:
        done = ctx.run(
            lambda s, actor: activities.move_deal(
                s, actor=actor, deal_id=deal_id, stage=stage, expected_version=version,
                reason=reason,
            ),
            ok=_("Deal moved."),
        )  # fmt: skip
        if done is not None:
            board.refresh()

    def ask_lost(deal_id: int, version: int, stage: str) -> None:
        with ui.dialog() as dialog, ui.card().classes("w-full max-w-md"):
            ui.label(_("Why was this deal lost?"))
            reason = ui.input(_("Reason")).classes("w-full").mark("lost-reason")

            def confirm() -> None:
                dialog.close()
                move(deal_id, version, stage, reason.value)

            with ui.row():
                ui.button(_("Mark lost"), on_click=confirm).props("color=negative").mark(
                    "confirm-lost"
                )
                ui.button(_("Cancel"), on_click=dialog.close).props("flat")
        dialog.open()

    @ui.refreshable
    def board() -> None:
        owner_id = int(owner.value) if owner.value else None
        team_id = int(team.value) if team.value else None

        def read(s, actor):  # type: ignore[no-untyped-def]
            columns = activities.pipeline_board(s, actor=actor, owner_id=owner_id, team_id=team_id)
            ids = [d.customer_id for col in columns for d in col.deals]
            return columns, customer_names(s, actor=actor, customer_ids=ids)

        data = ctx.run(read)
        if data is None:
            return
        columns, names = data
        stage_names = {
            col.stage.key: col.stage.name_zh if ctx.locale == "zh" else col.stage.name_en
            for col in columns
        }
        lost_keys = {col.stage.key for col in columns if col.stage.is_lost}
        with ui.row().classes("w-full no-wrap gap-3 overflow-x-auto items-start pb-2"):
            for col in columns:
                key = col.stage.key
                with (
                    ui.card()
                    .classes("min-w-[16rem] w-64 shrink-0 bg-grey-2 gap-2")
                    .mark(f"stage-{key}")
                ):
                    ui.label(stage_names[key]).classes("font-bold")
                    totals = ", ".join(ctx.money(v, cur) for cur, v in sorted(col.amounts.items()))
                    ui.label(
                        _("{count} deals", count=ctx.number(col.count))
                        + (f" · {totals}" if totals else "")
                    ).classes("text-sm text-grey-8").mark(f"stage-total-{key}")
                    for deal in col.deals:
                        with ui.card().classes("w-full gap-1 p-2").mark(f"deal-{deal.id}"):
                            ui.label(deal.title).classes("font-medium break-all")
                            ui.link(
                                names.get(deal.customer_id, f"#{deal.customer_id}"),
                                f"/customers/{deal.customer_id}",
                            ).classes("text-sm")
                            ui.label(ctx.money(deal.amount, deal.currency)).classes("text-sm")
                            if deal.lost_reason:
                                ui.label(_("Lost: {reason}", reason=deal.lost_reason)).classes(
                                    "text-xs text-negative break-all"
                                )
                            targets = {k: v for k, v in stage_names.items() if k != key}

                            def on_move(e, deal=deal) -> None:  # type: ignore[no-untyped-def]
                                if not e.value:
                                    return
                                if e.value in lost_keys:
                                    ask_lost(deal.id, deal.version, e.value)
                                else:
                                    move(deal.id, deal.version, e.value)

                            ui.select(targets, label=_("Move to"), on_change=on_move).props(
                                "dense outlined"
                            ).classes("w-full").mark(f"move-{deal.id}")

    board()
