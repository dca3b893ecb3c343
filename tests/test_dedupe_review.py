"""The review queue on SQLite and PostgreSQL: scan, field-by-field comparison, decisions
(not a duplicate is never proposed again, defer, merge), bulk accept, the single-record check
and who may do what."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from crm_core import customers as svc
from crm_core.bulk import bulk_create_customers
from crm_core.dedupe import review as rv
from crm_core.dedupe import store
from crm_core.errors import PermissionDenied
from crm_core.models import Customer, DedupeBlockKey


def _create(db, actor, **data) -> int:
    with db.transaction() as s:
        return svc.create_customer(s, actor=actor, data=data).id


@pytest.fixture
def people(db, staff):
    """Two planted duplicates, a third near-duplicate and an unrelated record."""
    a = _create(
        db, staff.admin, name="王伟", phones=["13800138000"], city="杭州", emails=["ww@example.com"]
    )
    b = _create(db, staff.admin, name="王伟", phones=["138 0013 8000"], city="杭州市")
    c = _create(db, staff.admin, name="Zhang Min", phones=["13711112222"], city="上海")
    d = _create(db, staff.admin, name="Zhang Min", phones=["13711112222"], city="上海")
    e = _create(db, staff.admin, name="Liu Yang", city="Chengdu", emails=["ly@example.net"])
    return a, b, c, d, e


def _queue_pairs(db, actor, status="open") -> set[tuple[int, int]]:
    with db.transaction() as s:
        items = rv.review_queue(s, actor=actor, status=status, with_fields=False)
        return {(i.left.id, i.right.id) for i in items}


def test_scan_fills_the_queue_with_a_field_by_field_comparison(db, staff, people):
    a, b, c, d, e = people
    with db.transaction() as s:
        report = rv.scan(s, actor=staff.steward, chunk_size=2)  # several chunks
    assert report.customers == 5 and report.pairs == 2 and report.new == 2
    assert _queue_pairs(db, staff.steward) == {(a, b), (c, d)}
    with db.transaction() as s:
        item = next(
            i for i in rv.review_queue(s, actor=staff.steward) if (i.left.id, i.right.id) == (a, b)
        )
        assert 0.8 <= item.score <= 1.0
        rows = {f.field: f for f in item.fields}
        assert rows["name"].left == rows["name"].right == "王伟"
        assert not rows["name"].differs and rows["name"].level == "same name"
        assert not rows["city"].differs  # 杭州 and 杭州市 are one city
        assert rows["emails"].differs and rows["emails"].right == []
        assert rows["phones"].level == "same"
    with db.transaction() as s:  # a second scan finds the same pairs and adds nothing
        again = rv.scan(s, actor=staff.steward)
    assert (again.new, again.updated) == (0, 2)


def test_not_a_duplicate_is_never_proposed_again(db, staff, people):
    a, b, c, d, _ = people
    with db.transaction() as s:
        rv.scan(s, actor=staff.steward)
        pair = next(i for i in rv.review_queue(s, actor=staff.steward) if i.left.id == c)
        rv.decide(s, actor=staff.steward, candidate_id=pair.id, decision="not_duplicate")
    assert _queue_pairs(db, staff.steward) == {(a, b)}
    with db.transaction() as s:
        rv.scan(s, actor=staff.steward)
        rv.scan(s, actor=staff.admin)
    assert _queue_pairs(db, staff.steward) == {(a, b)}
    assert _queue_pairs(db, staff.steward, status="not_duplicate") == {(c, d)}
    with db.transaction() as s:
        # the single-record check of c's edit form no longer warns about d either
        data = {"name": "Zhang Min", "phones": ["13711112222"], "city": "上海"}
        assert {h["id"] for h in store.check_customer(s, actor=staff.admin, data=data)} == {c, d}
        hits = store.check_customer(s, actor=staff.admin, data=data, exclude_id=c)
        assert hits == []


def test_defer_keeps_a_pair_for_later(db, staff, people):
    a, b, *_ = people
    with db.transaction() as s:
        rv.scan(s, actor=staff.steward)
        pair = next(i for i in rv.review_queue(s, actor=staff.steward) if i.left.id == a)
        rv.decide(s, actor=staff.steward, candidate_id=pair.id, decision="defer")
    assert (a, b) not in _queue_pairs(db, staff.steward)
    with db.transaction() as s:
        rv.scan(s, actor=staff.steward)
    assert _queue_pairs(db, staff.steward, status="deferred") == {(a, b)}


def test_merging_a_pair_empties_it_from_the_queue(db, staff, people):
    a, b, *_ = people
    with db.transaction() as s:
        rv.scan(s, actor=staff.steward)
        pair = next(i for i in rv.review_queue(s, actor=staff.steward) if i.left.id == a)
        merge = rv.merge_candidate(s, actor=staff.steward, candidate_id=pair.id)
        assert merge.survivor_id == a  # a holds an e-mail too
    assert (a, b) not in _queue_pairs(db, staff.steward)
    with db.transaction() as s:
        rv.scan(s, actor=staff.steward)
        assert rv.queue_counts(s, actor=staff.steward)["merged"] == 1
        # the tombstone keeps no blocking keys: checks never point at it
        assert not s.scalars(select(DedupeBlockKey).where(DedupeBlockKey.customer_id == b)).all()
    assert (a, b) not in _queue_pairs(db, staff.steward)


def test_bulk_accept_merges_only_pairs_above_the_threshold(db, staff, people):
    a, b, c, d, e = people
    with db.transaction() as s:
        rv.scan(s, actor=staff.steward)
        scores = {(i.left.id, i.right.id): i.score for i in rv.review_queue(s, actor=staff.steward)}
    with db.transaction() as s:
        nothing = rv.accept_above(s, actor=staff.steward, threshold=1.01)
    assert nothing.merged == [] and len(_queue_pairs(db, staff.steward)) == 2
    with db.transaction() as s:
        report = rv.accept_above(s, actor=staff.steward, threshold=min(scores.values()))
    assert len(report.merged) == 2 and not report.refused
    assert _queue_pairs(db, staff.steward) == set()
    with db.transaction() as s:
        live = s.scalars(select(Customer.id).where(Customer.merged_into_id.is_(None))).all()
        assert len(live) == 3 and e in live
    with pytest.raises(PermissionDenied), db.transaction() as s:
        rv.accept_above(s, actor=staff.analyst, threshold=0.0)


def test_single_record_check_finds_likely_duplicates_before_saving(db, staff, people):
    a, b, *_ = people
    with db.transaction() as s:
        hits = store.check_customer(
            s, actor=staff.admin, data={"name": "Wang Wei", "phone": "+86 138 0013 8000"}
        )
        assert {h["id"] for h in hits} == {a, b}
        assert all(h["score"] >= 0.8 for h in hits)
        assert store.check_customer(s, actor=staff.admin, data={"name": "Nobody Here"}) == []
        # an analyst sees the names masked
        masked = store.check_customer(
            s, actor=staff.analyst, data={"name": "王伟", "phone": "13800138000"}
        )
        assert masked and all(h["name"] == "王*" for h in masked)
    # a sales user is never told about another sales user's customer
    own = _create(db, staff.sales1, name="Qian Duo", phones=["13512345678"])
    with db.transaction() as s:
        data = {"name": "Qian Duo", "phone": "13512345678"}
        assert [h["id"] for h in store.check_customer(s, actor=staff.sales1, data=data)] == [own]
        assert store.check_customer(s, actor=staff.sales2, data=data) == []


def test_records_created_in_bulk_are_keyed_by_the_next_scan(db, staff):
    with db.transaction() as s:
        bulk_create_customers(
            s,
            actor=staff.admin,
            rows=[
                {"name": "Sun Li", "phones": ["13655556666"]},
                {"name": "Sun Li", "phones": ["13655556666"]},
            ],
        )
        assert store.check_customer(s, actor=staff.admin, data={"phone": "13655556666"}) == []
    with db.transaction() as s:
        report = rv.scan(s, actor=staff.steward)
        assert report.keyed == 2 and report.pairs == 1
        hits = store.check_customer(
            s, actor=staff.admin, data={"name": "Sun Li", "phone": "13655556666"}
        )
        assert len(hits) == 2


@pytest.mark.parametrize("role", ["sales1", "support", "analyst"])
def test_roles_without_review_rights_are_refused(db, staff, role):
    with pytest.raises(PermissionDenied), db.transaction() as s:
        rv.scan(s, actor=getattr(staff, role))
    with pytest.raises(PermissionDenied), db.transaction() as s:
        rv.review_queue(s, actor=getattr(staff, role))


def test_notebook_widget_merges_skips_and_undoes_through_its_buttons(db, staff, people):
    import crm_notebooks as crm
    from crm_core.db import forget_databases

    a, b, c, d, _ = people
    try:
        ctx = crm.connect(db.url, user="steward")
        widget = crm.DedupeReview(ctx, scan=True)
        assert len(widget.items) == 2 and "Pair 1 of 2" in widget.title.value
        first = widget.current
        assert "background" in widget.table.value  # differing rows highlighted
        widget.merge_button.click()
        assert widget.last_merge is not None and widget.progress.value == 1
        with db.transaction() as s:
            loser = s.get(Customer, widget.last_merge.loser_ids[0])
            assert loser.merged_into_id == widget.last_merge.survivor_id
            assert {loser.id, loser.merged_into_id} == {first.left.id, first.right.id}
        widget.skip_button.click()
        assert widget.current is None and "Queue done" in widget.title.value
        widget.undo_button.click()
        with db.transaction() as s:
            assert s.get(Customer, a).merged_into_id is None
            assert s.get(Customer, c).merged_into_id is None
        assert len(widget.items) == 2
        # an analyst may not review: the widget says so instead of failing
        refused = crm.DedupeReview(crm.connect(db.url, user="analyst"))
        assert refused.items == [] and "may not" in refused.message.value
    finally:
        forget_databases()


def test_bulk_keying_gives_the_same_keys_as_keying_one_record(db, staff, people):
    from sqlalchemy import delete

    from crm_core.models import DedupeKeyState

    def keys(s):
        rows = s.execute(select(DedupeBlockKey.customer_id, DedupeBlockKey.key)).all()
        return sorted((int(c), k) for c, k in rows)

    with db.transaction() as s:
        one_by_one = keys(s)
        assert len(one_by_one) > 10
        s.execute(delete(DedupeKeyState))
        assert store.refresh_keys(s, chunk_size=2) == len(people)
        assert keys(s) == one_by_one
        assert store.refresh_keys(s) == 0  # nothing stale any more


def test_the_rekey_migration_makes_the_next_scan_rebuild_every_key(db, staff, people):
    """Keys stored by an older key builder (simulated) are replaced by the next scan after
    revision 0041; until then the old keys stay in place."""
    from sqlalchemy import text, update

    from crm_core.migrate import upgrade

    with db.transaction() as s:
        current = sorted(
            (int(c), k)
            for c, k in s.execute(select(DedupeBlockKey.customer_id, DedupeBlockKey.key))
        )
        s.execute(update(DedupeBlockKey).values(key="old:" + DedupeBlockKey.key))
        s.execute(
            text("UPDATE alembic_version SET version_num = '0006' WHERE version_num = '0041'")
        )
    upgrade(db.engine)
    with db.transaction() as s:
        heads = set(s.execute(text("SELECT version_num FROM alembic_version")).scalars())
        assert "0041" in heads and "0006" not in heads
        stale = s.execute(select(DedupeBlockKey.key)).scalars().all()
        assert stale and all(k.startswith("old:") for k in stale)  # kept until the scan
        report = rv.scan(s, actor=staff.steward)
        assert report.keyed == len(people)
        rebuilt = sorted(
            (int(c), k)
            for c, k in s.execute(select(DedupeBlockKey.customer_id, DedupeBlockKey.key))
        )
        assert rebuilt == current
