"""``DedupeReview``: the duplicate review queue pair by pair in a notebook, with the same
services (and rights) as the web panel: merge, not a duplicate, skip, undo the last merge."""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as w
from IPython.display import display

from crm_core.dedupe import merge as merge_service
from crm_core.dedupe import review
from crm_core.dedupe.review import QueueItem
from crm_core.errors import CrmError
from crm_core.models import DedupeMerge
from crm_notebooks.context import NotebookContext


def _show(value: Any) -> str:
    if isinstance(value, list):
        value = ", ".join(map(str, value))
    return html.escape("" if value is None else str(value))


def comparison_html(item: QueueItem) -> str:
    """The pair side by side as an HTML table; differing rows are highlighted."""
    rows = [f"<tr><th></th><th>#{item.left.id}</th><th>#{item.right.id}</th><th>level</th></tr>"]
    for f in item.fields:
        if not f.differs and f.left in (None, "", []) and f.right in (None, "", []):
            continue
        style = ' style="background:#fff3cd"' if f.differs else ""
        rows.append(
            f"<tr{style}><td><b>{html.escape(f.field)}</b></td><td>{_show(f.left)}</td>"
            f"<td>{_show(f.right)}</td><td>{html.escape(f.level or '')}</td></tr>"
        )
    return f"<p>score <b>{item.score:.3f}</b></p><table>{''.join(rows)}</table>"


class DedupeReview:
    """Work through the review queue: ``merge()``, ``not_duplicate()``, ``skip()`` and
    ``undo()`` do what the buttons do (the widget calls them)."""

    def __init__(
        self, ctx: NotebookContext, *, status: str = "open", limit: int = 200, scan: bool = False
    ) -> None:
        self.ctx = ctx
        self.status = status
        self.limit = limit
        self.position = 0
        self.done = 0
        self.last_merge: DedupeMerge | None = None
        self.items: list[QueueItem] = []
        self.title = w.HTML()
        self.progress = w.IntProgress(min=0, max=1, value=0, description="reviewed")
        self.table = w.HTML()
        self.message = w.HTML()
        self.merge_button = w.Button(description="Merge", button_style="primary", icon="compress")
        self.not_duplicate_button = w.Button(description="Not a duplicate", icon="ban")
        self.skip_button = w.Button(description="Skip", icon="forward")
        self.undo_button = w.Button(description="Undo last merge", icon="undo", disabled=True)
        self.merge_button.on_click(lambda _b: self.merge())
        self.not_duplicate_button.on_click(lambda _b: self.not_duplicate())
        self.skip_button.on_click(lambda _b: self.skip())
        self.undo_button.on_click(lambda _b: self.undo())
        buttons = w.HBox(
            [self.merge_button, self.not_duplicate_button, self.skip_button, self.undo_button]
        )
        self.widget = w.VBox([self.title, self.progress, self.table, buttons, self.message])
        if scan:
            report = self._call(review.scan)
            if report is not None:
                self._say(f"scan: {report.pairs} pairs among {report.customers} customers")
        self.reload()

    # ---------------------------------------------------------------- state

    def _call(self, service: Any, **kwargs: Any) -> Any:
        try:
            return self.ctx.run(service, **kwargs)
        except CrmError as exc:
            self._say(exc.message, error=True)
            return None

    def _say(self, text: str, *, error: bool = False) -> None:
        color = "#b00020" if error else "#1b5e20"
        self.message.value = f'<span style="color:{color}">{html.escape(text)}</span>'

    def reload(self) -> None:
        """Read the queue again and show its first pair."""
        items = self._call(review.review_queue, status=self.status, limit=self.limit)
        self.items = list(items or [])
        self.position = 0
        self.done = 0
        self._render()

    @property
    def current(self) -> QueueItem | None:
        """The pair on screen, or ``None`` when the queue is done."""
        return self.items[self.position] if self.position < len(self.items) else None

    def _render(self) -> None:
        total = len(self.items)
        self.progress.max = max(total, 1)
        self.progress.value = min(self.position, total)
        item = self.current
        for button in (self.merge_button, self.not_duplicate_button, self.skip_button):
            button.disabled = item is None
        self.undo_button.disabled = self.last_merge is None
        if item is None:
            self.title.value = f"<h4>Queue done: {self.done} decided of {total}</h4>"
            self.table.value = ""
            return
        self.title.value = (
            f"<h4>Pair {self.position + 1} of {total}: "
            f"{_show(item.left.name)} ~ {_show(item.right.name)}</h4>"
        )
        self.table.value = comparison_html(item)

    def _next(self) -> None:
        self.position += 1
        self._render()

    # ---------------------------------------------------------------- actions

    def merge(
        self, *, survivor_id: int | None = None, choices: dict[str, int] | None = None
    ) -> DedupeMerge | None:
        """Merge the pair on screen (survivor and per-field choices optional)."""
        item = self.current
        if item is None:
            return None
        merged = self._call(
            review.merge_candidate,
            candidate_id=item.id,
            survivor_id=survivor_id,
            choices=choices,
            expected_versions={item.left.id: item.left.version, item.right.id: item.right.version},
        )
        if merged is not None:
            self.last_merge = merged
            self.done += 1
            self._say(f"merge {merged.id}: {merged.loser_ids} into {merged.survivor_id}")
            self._next()
        return merged

    def not_duplicate(self) -> None:
        """Remember the pair on screen as two different customers."""
        item = self.current
        if item is None:
            return
        if self._call(review.decide, candidate_id=item.id, decision="not_duplicate") is not None:
            self.done += 1
            self._say("remembered as different customers")
            self._next()

    def skip(self) -> None:
        """Leave the pair on screen undecided and show the next one."""
        if self.current is not None:
            self._next()

    def undo(self) -> None:
        """Undo the last merge made here; the queue is read again."""
        if self.last_merge is None:
            return
        merge_id = self.last_merge.id
        if self._call(merge_service.undo_merge, merge_id=merge_id) is not None:
            self.last_merge = None
            self.reload()
            self._say(f"merge {merge_id} undone")

    def _ipython_display_(self) -> None:
        display(self.widget)
