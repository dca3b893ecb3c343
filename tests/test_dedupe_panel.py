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


# ---------------------------------------------------------------- warning before saving


def _customer_count(panel: Panel) -> int:
    from sqlalchemy import func, select

    with panel.db.transaction() as s:
        return int(s.scalar(select(func.count(Customer.id))) or 0)


async def test_creating_a_near_copy_warns_and_saves_only_when_confirmed(
    ui_user: User, panel: Panel
) -> None:
    first = panel.customer(
        panel.staff.admin, name="王伟", phones=["13800138000"], emails=["wangwei@163.com"]
    )
    await login(ui_user, "admin")
    ui_user.find(marker="new-customer").click()
    ui_user.find(marker="new-name").type("王偉")
    ui_user.find(marker="new-phone").type("138 0013 8000")
    ui_user.find(marker="create-customer").click()
    await ui_user.should_see("Possible duplicates")
    await ui_user.should_see(marker=f"duplicate-{first}")
    link = next(iter(ui_user.find(marker=f"duplicate-link-{first}").elements))
    assert link.text == "王伟" and link.props["href"] == f"/customers/{first}"
    score = next(iter(ui_user.find(marker=f"duplicate-score-{first}").elements))
    assert score.text.endswith("% alike") and int(score.text.split("%")[0]) >= 80
    assert _customer_count(panel) == 1  # nothing saved while the warning is open
    ui_user.find(marker="cancel-save").click()
    assert _customer_count(panel) == 1  # cancel saves nothing
    ui_user.find(marker="create-customer").click()
    await ui_user.should_see(marker=f"duplicate-{first}")
    assert _customer_count(panel) == 1
    ui_user.find(marker="save-anyway").click()
    await ui_user.should_see(marker="customer-name", content="王偉")
    assert _customer_count(panel) == 2


async def test_creating_a_distinct_customer_saves_without_a_warning(
    ui_user: User, panel: Panel
) -> None:
    first = panel.customer(panel.staff.admin, name="王伟", phones=["13800138000"])
    await login(ui_user, "admin")
    ui_user.find(marker="new-customer").click()
    ui_user.find(marker="new-name").type("李娜")
    ui_user.find(marker="new-phone").type("13900001111")
    ui_user.find(marker="create-customer").click()  # one click: saved and opened
    await ui_user.should_see(marker="customer-name", content="李娜")
    await ui_user.should_not_see(marker=f"duplicate-{first}")
    assert _customer_count(panel) == 2


async def test_editing_into_a_near_copy_warns_in_chinese_before_saving(
    ui_user: User, panel: Panel
) -> None:
    from crm_core import users

    sales = panel.staff.sales1
    first = panel.customer(sales, name="王伟", phones=["13800138000"], city="杭州")
    other = panel.customer(sales, name="李娜", phones=["13900001111"], city="深圳")
    with panel.db.transaction() as s:
        users.set_locale(s, actor=sales, locale="zh")
    await login(ui_user, "sales1")
    await ui_user.open(f"/customers/{other}")
    ui_user.find(marker="field-notes").type("只改备注")
    ui_user.find(marker="save").click()  # no identity field changed: saved, no check
    await ui_user.should_see("已保存")
    ui_user.find(marker="field-name").clear()
    ui_user.find(marker="field-name").type("王偉")
    ui_user.find(marker="field-phones").clear()
    ui_user.find(marker="field-phones").type("13800138000")
    ui_user.find(marker="save").click()
    await ui_user.should_see("可能重复的客户")
    await ui_user.should_see(marker=f"duplicate-{first}")
    await ui_user.should_not_see(marker=f"duplicate-{other}")  # not itself
    score = next(iter(ui_user.find(marker=f"duplicate-score-{first}").elements))
    assert score.text.startswith("相似度")
    with panel.db.transaction() as s:
        assert s.get(Customer, other).name == "李娜"  # nothing saved yet
    ui_user.find(marker="save-anyway").click()
    await ui_user.should_see(marker="customer-name")
    with panel.db.transaction() as s:
        row = s.get(Customer, other)
        assert (row.name, row.phone) == ("王偉", "+8613800138000")


def test_duplicate_warning_texts_are_translated() -> None:
    import ast
    from pathlib import Path

    from app.components import duplicate_warning as component
    from crm_core.i18n import clear_cache, translator

    clear_cache()
    _ = translator("zh", "dedupe")
    source = Path(component.__file__).read_text(encoding="utf-8")
    texts = {
        node.args[0].value
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "_"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }
    assert len(texts) == 5
    assert sorted(t for t in texts if _(t) == t) == []
