"""The duplicate review page through NiceGUI's ``User`` fixture: side-by-side comparison with
differences marked, field picking, merge, not a duplicate, and undo from the history."""

from __future__ import annotations

from nicegui.testing import User
from panel_fixtures import *  # noqa: F403  (the panel and ui_user fixtures)
from panel_fixtures import Panel, login

from crm_core.dedupe import review
from crm_core.models import Customer, DedupeDecision


def _pair(panel: Panel) -> tuple[int, int]:
    admin = panel.staff.admin
    a = panel.customer(admin, name="王伟", phones=["13800138000"], city="杭州", industry="retail")
    b = panel.customer(admin, name="王伟", phones=["13800138000"], city="杭州", industry="software")
    with panel.db.transaction() as s:
        review.scan(s, actor=panel.staff.steward)
    return a, b


def _pair_id(panel: Panel) -> int:
    with panel.db.transaction() as s:
        return review.review_queue(s, actor=panel.staff.steward, with_fields=False)[0].id


async def test_steward_compares_picks_a_field_merges_and_undoes(
    ui_user: User, panel: Panel
) -> None:
    a, b = _pair(panel)
    pid = _pair_id(panel)
    await login(ui_user, "steward")
    await ui_user.open("/dedupe")
    await ui_user.should_see(marker=f"pair-{pid}")
    await ui_user.should_see(marker=f"field-{pid}-industry-differs")
    await ui_user.should_see(marker=f"field-{pid}-name")  # the same: not marked as differing
    ui_user.find(marker=f"pick-{pid}-industry").elements.pop().value = a
    ui_user.find(marker=f"survivor-{pid}").elements.pop().value = b
    ui_user.find(marker=f"merge-{pid}").click()
    await ui_user.should_see("Merged (merge 1)")
    with panel.db.transaction() as s:
        assert s.get(Customer, a).merged_into_id == b
        assert s.get(Customer, b).industry == "retail"  # picked from the other record
    await ui_user.should_see(marker="undo-1")
    ui_user.find(marker="undo-1").click()
    await ui_user.should_see("Merge 1 undone.")
    with panel.db.transaction() as s:
        assert s.get(Customer, a).merged_into_id is None
        assert s.get(Customer, b).industry == "software"
    await ui_user.should_see(marker=f"pair-{pid}")  # back in the queue


async def test_not_a_duplicate_leaves_the_queue_for_good(ui_user: User, panel: Panel) -> None:
    _pair(panel)
    pid = _pair_id(panel)
    await login(ui_user, "admin")
    await ui_user.open("/dedupe")
    ui_user.find(marker=f"not-duplicate-{pid}").click()
    await ui_user.should_see("Remembered as different customers.")
    await ui_user.should_see("Nothing to review")
    ui_user.find(marker="dedupe-scan").click()
    await ui_user.should_see("0 likely duplicate pairs among 2 customers")  # never again
    await ui_user.should_not_see(marker=f"pair-{pid}")
    with panel.db.transaction() as s:
        assert s.query(DedupeDecision).count() == 1


async def test_roles_without_review_rights_do_not_get_the_page(ui_user: User, panel: Panel) -> None:
    await login(ui_user, "sales1")
    assert (await ui_user.http_client.get("/dedupe")).status_code == 403


def test_review_page_texts_are_translated() -> None:
    import ast
    from pathlib import Path

    from app.pages import dedupe as page
    from crm_core.i18n import clear_cache, translator

    clear_cache()
    _ = translator("zh", "dedupe")
    source = Path(page.__file__).read_text(encoding="utf-8")
    texts = {
        node.args[0].value
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "_"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    } | set(page.FIELD_LABELS.values())
    assert sorted(t for t in texts if _(t) == t) == []
    assert _("Merge {id} undone.", id=3) == "合并 3 已撤销。"
