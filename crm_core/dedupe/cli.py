"""``crm dedupe …`` (mounted by ``crm_core.cli``).

crm dedupe scan                          # compare all customers, refresh the review queue
crm dedupe review --limit 20             # the queue, highest score first, with differences
crm dedupe merge 12 31 --survivor 12 --keep city=31
crm dedupe not-duplicate 12 40           # remembered: never proposed again
crm dedupe accept --threshold 0.99       # merge every open pair at or above the threshold
crm dedupe history                       # merges, newest first
crm dedupe undo 7                        # restore the state before merge 7
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from crm_core.errors import InvalidInput

AsUser = Annotated[
    str | None, typer.Option("--as", help="Act as this user (default: the system operator).")
]

dedupe_app = typer.Typer(
    help="Find, review, merge and undo duplicate customers.", no_args_is_help=True
)


def _run(username: str | None, work: Callable[[Any, Any], None]) -> None:
    """Run ``work(session, actor)`` in one transaction (see ``crm_core.cli.run_as``)."""
    from crm_core.cli import run_as

    run_as(username, work)


def _short(value: Any, width: int = 24) -> str:
    text = ", ".join(map(str, value)) if isinstance(value, list) else str(value or "")
    return text if len(text) <= width else text[: width - 1] + "…"


@dedupe_app.command()
def scan(as_user: AsUser = None) -> None:
    """Compare every customer and refresh the review queue."""
    from crm_core.dedupe.review import scan as run_scan

    def work(session: Any, actor: Any) -> None:
        r = run_scan(session, actor=actor)
        typer.echo(
            f"{r.customers} customers compared in {r.seconds:.1f} s ({r.keyed} re-keyed): "
            f"{r.pairs} likely duplicate pairs in {r.clusters} clusters, {r.new} new, "
            f"{r.removed} dropped, {r.auto_merge} at or above the auto-merge threshold"
        )

    _run(as_user, work)


@dedupe_app.command()
def review(
    status: Annotated[str, typer.Option(help="open, deferred, merged or not_duplicate")] = "open",
    limit: Annotated[int, typer.Option(help="How many pairs to show.")] = 20,
    as_user: AsUser = None,
) -> None:
    """List the review queue, highest score first, with the fields that differ."""
    from crm_core.dedupe.review import queue_counts, review_queue

    def work(session: Any, actor: Any) -> None:
        counts = queue_counts(session, actor=actor)
        typer.echo(", ".join(f"{k}: {v}" for k, v in counts.items()))
        for item in review_queue(session, actor=actor, status=status, limit=limit):
            typer.echo(
                f"pair {item.id}  score {item.score:.3f}  "
                f"#{item.left.id} {item.left.name}  ~  #{item.right.id} {item.right.name}"
            )
            for f in item.fields:
                if f.differs and (f.left not in (None, [], "") or f.right not in (None, [], "")):
                    typer.echo(f"    {f.field:<16} {_short(f.left):<26} | {_short(f.right)}")

    _run(as_user, work)


def _choices(keep: list[str] | None) -> dict[str, int]:
    out = {}
    for item in keep or []:
        name, _, cid = item.partition("=")
        if not cid.strip().isdigit():
            raise InvalidInput(f"'{item}' is not FIELD=CUSTOMER_ID", field="keep")
        out[name.strip()] = int(cid)
    return out


@dedupe_app.command()
def merge(
    customer_ids: Annotated[list[int], typer.Argument(help="Two or more customer ids.")],
    survivor: Annotated[int | None, typer.Option(help="The record that survives.")] = None,
    keep: Annotated[
        list[str] | None, typer.Option(help="FIELD=CUSTOMER_ID: take this field from that record.")
    ] = None,
    as_user: AsUser = None,
) -> None:
    """Merge customers into one (field survivorship, children moved, tombstones kept)."""
    from crm_core.dedupe.merge import merge_customers

    def work(session: Any, actor: Any) -> None:
        m = merge_customers(
            session,
            actor=actor,
            customer_ids=customer_ids,
            survivor_id=survivor,
            choices=_choices(keep),
            source="cli",
        )
        losers = ", ".join(map(str, m.loser_ids))
        typer.echo(
            f"merge {m.id}: {losers} merged into {m.survivor_id} (undo: crm dedupe undo {m.id})"
        )

    _run(as_user, work)


@dedupe_app.command()
def undo(merge_id: int, as_user: AsUser = None) -> None:
    """Restore the state before a merge."""
    from crm_core.dedupe.merge import undo_merge

    def work(session: Any, actor: Any) -> None:
        m = undo_merge(session, actor=actor, merge_id=merge_id, source="cli")
        typer.echo(f"merge {m.id} undone: {', '.join(map(str, m.loser_ids))} restored")

    _run(as_user, work)


@dedupe_app.command("not-duplicate")
def not_duplicate(left_id: int, right_id: int, as_user: AsUser = None) -> None:
    """Remember that two customers are different: never proposed again."""
    from crm_core.dedupe.review import mark_not_duplicate

    def work(session: Any, actor: Any) -> None:
        mark_not_duplicate(session, actor=actor, left_id=left_id, right_id=right_id)
        typer.echo(f"{left_id} and {right_id} are remembered as different customers")

    _run(as_user, work)


@dedupe_app.command()
def accept(
    threshold: Annotated[
        float | None, typer.Option(help="Lowest score merged (default: auto-merge threshold).")
    ] = None,
    as_user: AsUser = None,
) -> None:
    """Merge every open pair at or above the threshold."""
    from crm_core.dedupe.review import accept_above

    def work(session: Any, actor: Any) -> None:
        report = accept_above(session, actor=actor, threshold=threshold)
        typer.echo(f"{len(report.merged)} merges ({', '.join(map(str, report.merged)) or '-'})")
        for pair, reason in report.refused:
            typer.echo(f"  pair {pair} refused: {reason}")

    _run(as_user, work)


@dedupe_app.command()
def history(limit: int = 20, as_user: AsUser = None) -> None:
    """Merges, newest first."""
    from crm_core.dedupe.merge import list_merges

    def work(session: Any, actor: Any) -> None:
        for m in list_merges(session, actor=actor, limit=limit):
            state = f"undone {m.undone_at:%Y-%m-%d %H:%M}" if m.undone_at else "active"
            losers = ", ".join(map(str, m.loser_ids))
            typer.echo(f"merge {m.id}  {m.at:%Y-%m-%d %H:%M}  {losers} -> {m.survivor_id}  {state}")

    _run(as_user, work)
