"""Import batches on SQLite and PostgreSQL: preview, modes, all-or-nothing, rejects, idempotent
re-import, audit and revert."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select, text

from crm_core import customers as customer_service
from crm_core.activities import log_interaction
from crm_core.errors import ConflictError, InvalidInput, PermissionDenied
from crm_core.importing import (
    ImportOptions,
    ImportRejected,
    preview_import,
    revert_batch,
    revert_check,
    run_import,
)
from crm_core.models import AuditEntry, Customer, ImportBatch

FIXTURES = Path(__file__).parent / "fixtures" / "import"
GBK = FIXTURES / "gbk_excel.csv"


def _count(db, model=Customer) -> int:
    with db.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def _import(db, actor, source, **options):
    name = options.pop("file_name", "upload.csv")
    with db.transaction() as s:
        return run_import(
            s, actor=actor, source=source, file_name=name, options=ImportOptions(**options)
        )


def _by_name(db, actor, name):
    with db.transaction() as s:
        cid = s.scalar(select(Customer.id).where(Customer.name == name))
        return customer_service.get_customer(s, actor=actor, customer_id=cid)


def _edit(db, actor, customer, **changes) -> None:
    """``customer`` (as read) edited by hand."""
    with db.transaction() as s:
        customer_service.update_customer(
            s,
            actor=actor,
            customer_id=customer.id,
            changes=changes,
            expected_version=customer.version,
        )


def test_gbk_file_from_chinese_excel_is_cleaned_on_the_way_in(db, staff):
    report = _import(db, staff.steward, GBK.read_bytes())
    assert report.counts() == {
        "total": 4,
        "created": 4,
        "updated": 0,
        "unchanged": 0,
        "skipped": 0,
        "invalid": 0,
        "merged": 0,
    }
    wang = _by_name(db, staff.admin, "王伟")
    assert wang.phones == ["+8613800138000", "+861065529988"]
    assert wang.email == "wang.wei@example.com"
    assert wang.birthday == date(1985, 3, 12) and wang.city == "北京"
    assert wang.tags == ["展会2024", "重点"] and wang.notes is None
    li = _by_name(db, staff.admin, "李娜")
    assert li.email == "Li.Na@example.com" and li.birthday == date(1990, 5, 3)
    assert li.notes == "喜欢电话联系, 下午"
    liu = _by_name(db, staff.admin, "刘洋")
    assert liu.phone == "+8613800100000"  # 1.38001E+10 as Excel shows it


def test_utf8_bom_and_xlsx_with_text_cells(db, staff):
    report = _import(db, staff.steward, FIXTURES / "utf8_bom.csv")
    assert report.created == 3 and report.encoding == "utf-8-sig"
    mary = _by_name(db, staff.admin, "Mary Jones")
    assert mary.lifecycle_stage == "prospect" and mary.phone == "+442079460958"
    assert mary.notes == 'said: "call me" next week'
    john = _by_name(db, staff.admin, "John Smith")
    assert john.birthday == date(1980, 5, 3) and john.company_name == "Acme, Inc."

    report = _import(db, staff.steward, FIXTURES / "text_cells.xlsx")
    assert (report.file_format, report.created, report.invalid) == ("xlsx", 3, 0)
    assert report.mapping["客户编号"] == "external_id"
    zhao = _by_name(db, staff.admin, "赵磊")
    assert zhao.birthday == date(1988, 7, 9) and zhao.value_tier == "A"
    assert zhao.external_id == "A-1001" and zhao.postcode == "510000"
    sun = _by_name(db, staff.admin, "孙丽")
    assert sun.phone == "+8613800138003" and sun.birthday == date(1992, 2, 29)
    assert sun.external_id == "1002"


def test_preview_writes_nothing_and_predicts_the_commit(db, staff):
    data = GBK.read_bytes() + "王伟,13800138000,,,,,,,,,,,,\r\n坏,123,,,,,,,,,,,,\r\n".encode("gbk")
    with db.transaction() as s:
        preview = preview_import(s, actor=staff.steward, source=data)
    assert preview.dry_run and preview.batch_id is None
    assert _count(db) == 0 and _count(db, ImportBatch) == 0
    assert preview.invalid == 1 and preview.issues[0].line == 7
    assert preview.issues[0].field == "phone"
    report = _import(db, staff.steward, data, all_or_nothing=False)
    assert report.counts() == preview.counts()
    # the repeated 王伟 row (same phone) is merged into the first one, not a copy
    assert preview.created == 4 and preview.merged == 1
    with db.transaction() as s:
        assert s.scalar(select(func.count()).where(Customer.name == "王伟")) == 1


def test_all_or_nothing_rejects_the_whole_file(db, staff):
    data = b"name,email\nGood,good@example.com\nBad,not-an-email\n"
    with pytest.raises(ImportRejected) as err:
        _import(db, staff.steward, data)
    assert "1 of 2 rows are invalid, nothing was imported" in str(err.value)
    assert err.value.report.issues[0].field == "email"
    assert (
        _count(db) == 0
        and _count(db, ImportBatch) == 0
        and _count(db, AuditEntry) == 0 + (_count(db, AuditEntry))
    )


def test_valid_rows_only_returns_a_rejects_file(db, staff):
    data = "姓名,邮箱,生日\n好,good@example.com,1990-01-01\n坏,bad,31/31/1990\n".encode()
    report = _import(db, staff.steward, data, all_or_nothing=False)
    assert (report.created, report.invalid) == (1, 1)
    rejects = report.rejects_csv().decode("utf-8-sig").splitlines()
    assert rejects[0] == "姓名,邮箱,生日,line,error"
    assert rejects[1].startswith("坏,bad,31/31/1990,3,email:")
    assert "birthday:" in rejects[1]


def test_reimporting_the_same_file_changes_nothing(db, staff):
    first = _import(db, staff.steward, GBK)
    with db.transaction() as s:
        versions = dict(s.execute(select(Customer.id, Customer.version)).all())
        audits = s.scalar(select(func.count(AuditEntry.id)))
    second = _import(db, staff.steward, GBK)
    assert second.unchanged == 4 and second.created == second.updated == 0
    assert second.already_imported == [first.batch_id]
    with db.transaction() as s:
        assert dict(s.execute(select(Customer.id, Customer.version)).all()) == versions
        # only the batch's own entry is new
        assert s.scalar(select(func.count(AuditEntry.id))) == audits + 1


def test_modes_and_keys(db, staff):
    _import(db, staff.steward, b"name,email,city\nAnn,ann@example.com,Paris\n")
    data = b"name,email,city\nAnn,ANN@example.com,Rome\nBen,ben@example.com,Oslo\n"
    create = _import(db, staff.steward, data, mode="create")
    assert (create.created, create.skipped) == (1, 1)
    assert "exists already" in create.skips[0].message
    data = b"name,email,city\nAnn,ann@example.com,Rome\nCid,cid@example.com,Oslo\n"
    update = _import(db, staff.steward, data, mode="update")
    assert (update.updated, update.skipped, update.created) == (1, 1, 0)
    assert _by_name(db, staff.admin, "Ann").city == "Rome"
    assert _count(db) == 2
    # match by phone: the e-mail is added, not replacing the stored one
    _import(db, staff.steward, b"name,phone\nDan,13800138011\n")
    both = _import(
        db,
        staff.steward,
        b"name,phone,email\nDan,138-0013-8011,dan@example.com\n",
        match_key="phone",
    )
    assert both.updated == 1
    dan = _by_name(db, staff.admin, "Dan")
    assert dan.emails == ["dan@example.com"] and dan.phones == ["+8613800138011"]
    with pytest.raises(InvalidInput, match="to match the customers to update"):
        _import(db, staff.steward, b"name,city\nX,Y\n", mode="update")


def test_an_export_edited_and_imported_back_updates_by_id(db, staff):
    import io

    from crm_core.importing.export import export_customers

    _import(db, staff.steward, GBK)
    buf = io.BytesIO()
    with db.transaction() as s:
        export_customers(s, actor=staff.admin, target=buf)
    text = buf.getvalue().decode("utf-8-sig").replace("采购经理", "采购总监")
    report = _import(db, staff.steward, text.encode("utf-8"))
    assert report.key_columns[0] == "id"
    assert (report.updated, report.unchanged, report.created) == (1, 3, 0)
    assert _by_name(db, staff.admin, "王伟").position == "采购总监"


def test_imports_are_audited_with_the_batch(db, staff):
    report = _import(db, staff.steward, GBK)
    with db.transaction() as s:
        entries = list(
            s.scalars(select(AuditEntry).where(AuditEntry.source == f"import:{report.batch_id}"))
        )
    actions = sorted(e.action for e in entries)
    assert actions == ["customer.create"] * 4 + ["import.commit"]
    assert all(e.actor_name == "steward" for e in entries)


def test_only_import_roles_may_import(db, staff):
    for actor in (staff.sales1, staff.analyst, staff.support, staff.manager):
        with pytest.raises(PermissionDenied):
            _import(db, actor, GBK)


def test_revert_removes_created_and_restores_updated(db, staff):
    base = _import(db, staff.steward, b"name,email,city,tags\nAnn,ann@example.com,Paris,a\n")
    ann = _by_name(db, staff.admin, "Ann")
    data = (
        b"name,email,city,tags,phone\n"
        b"Ann,ann@example.com,Rome,b,13800138012\nBen,ben@example.com,Oslo,,\n"
    )
    batch = _import(db, staff.steward, data)
    assert (batch.created, batch.updated) == (1, 1)
    with db.transaction() as s:
        assert revert_check(s, actor=staff.steward, batch_id=batch.batch_id) == []
        result = revert_batch(s, actor=staff.steward, batch_id=batch.batch_id, reason="wrong file")
    assert (result.removed, result.restored) == (1, 1)
    after = _by_name(db, staff.admin, "Ann")
    assert (after.city, after.tags, after.phones) == ("Paris", ["a"], [])
    assert after.version > ann.version
    assert _count(db) == 1
    with db.transaction() as s:
        stored = s.get(ImportBatch, batch.batch_id)
        assert stored.status == "reverted" and stored.revert_reason == "wrong file"
        with pytest.raises(ConflictError, match="reverted already"):
            revert_batch(s, actor=staff.steward, batch_id=batch.batch_id)
    # the first batch is still revertible after the later one was undone
    with db.transaction() as s:
        revert_batch(s, actor=staff.steward, batch_id=base.batch_id)
    assert _count(db) == 0


def test_updates_share_new_tags_and_change_a_record_twice_in_one_chunk(db, staff):
    """Updates of one chunk: a tag new to the database named by several records is made
    once; a record two rows change (through different keys) takes both changes, one
    version each; reverting restores it, and re-importing changes nothing."""
    _import(
        db,
        staff.steward,
        b"name,email,phone,tags\nAnn,ann@example.com,13800138001,a\nBen,ben@example.com,,\n",
    )
    ann, ben = _by_name(db, staff.admin, "Ann"), _by_name(db, staff.admin, "Ben")
    data = (
        b"name,email,phone,city,tags\n"
        b"Ann,ann@example.com,,Rome,fresh\n"
        b"Ben,ben@example.com,,Oslo,fresh;other\n"
        b",,13800138001,,other\n"
    )
    batch = _import(db, staff.steward, data, match_key="auto")
    assert (batch.created, batch.updated, batch.invalid) == (0, 3, 0)
    ann2, ben2 = _by_name(db, staff.admin, "Ann"), _by_name(db, staff.admin, "Ben")
    assert (ann2.city, ann2.tags) == ("Rome", ["a", "fresh", "other"])
    assert (ben2.city, ben2.tags) == ("Oslo", ["fresh", "other"])
    assert (ann2.version, ben2.version) == (ann.version + 2, ben.version + 1)
    with db.transaction() as s:
        from crm_core.models import Tag

        names = sorted(s.scalars(select(Tag.name)))
    assert names == ["a", "fresh", "other"]
    assert _import(db, staff.steward, data).counts()["unchanged"] == 3
    with db.transaction() as s:
        revert_batch(s, actor=staff.steward, batch_id=batch.batch_id)
    ann3, ben3 = _by_name(db, staff.admin, "Ann"), _by_name(db, staff.admin, "Ben")
    assert (ann3.city, ann3.tags, ben3.city, ben3.tags) == (None, ["a"], None, [])


def test_revert_is_refused_when_later_edits_make_it_unsafe(db, staff):
    batch = _import(db, staff.steward, b"name,email\nAnn,ann@example.com\nBen,ben@example.com\n")
    ann, ben = _by_name(db, staff.admin, "Ann"), _by_name(db, staff.admin, "Ben")
    with db.transaction() as s:
        customer_service.update_customer(
            s, actor=staff.admin, customer_id=ann.id, expected_version=ann.version,
            changes={"city": "Lyon"},
        )  # fmt: skip
        log_interaction(s, actor=staff.admin, customer_id=ben.id, kind="call", subject="hello")
    with db.transaction() as s:
        reasons = revert_check(s, actor=staff.steward, batch_id=batch.batch_id)
        assert any(f"customer {ann.id} was changed after the import" in r for r in reasons)
        assert any(f"customer {ben.id} has a interaction" in r for r in reasons)
        with pytest.raises(ConflictError, match="cannot be reverted"):
            revert_batch(s, actor=staff.steward, batch_id=batch.batch_id)
    assert _count(db) == 2


def test_archived_and_ambiguous_matches_are_not_overwritten(db, staff):
    _import(db, staff.steward, b"name,phone\nAnn,13800138013\nBen,13800138014\n")
    ann = _by_name(db, staff.admin, "Ann")
    with db.transaction() as s:
        customer_service.archive_customer(s, actor=staff.admin, customer_id=ann.id, reason="left")
        customer_service.create_customer(
            s, actor=staff.admin, data={"name": "Ben 2", "phones": ["13800138014"]}
        )
    report = _import(
        db,
        staff.steward,
        b"name,phone,city\nAnn,13800138013,Rome\nBen,13800138014,Oslo\n",
        all_or_nothing=False,
    )
    assert report.skipped == 1 and "archived" in report.skips[0].message
    assert report.invalid == 1 and "matches 2 customers" in report.issues[0].message


def test_duplicates_are_flagged_in_the_preview(db, staff):
    _import(db, staff.steward, "姓名,手机,公司,城市\n王建国,13800138020,星辰科技,北京\n".encode())
    rows = ["姓名,手机,邮箱,公司,城市"]
    rows += [f"客户{i},1390000{i:04d},c{i}@example.com,公司{i},城市{i % 7}" for i in range(40)]
    rows += [
        "王建国,13800138020,wjg@example.com,星辰科技,北京",
        "李小红,13700000001,lxh@example.com,明德贸易,上海",
        "李小红,13700000001,lxh2@example.com,明德贸易有限公司,上海",
    ]
    with db.transaction() as s:
        existing = s.scalar(select(Customer.id).where(Customer.name == "王建国"))
        report = preview_import(
            s,
            actor=staff.steward,
            source="\n".join(rows).encode(),
            options=ImportOptions(match_key="email"),
        )
    assert report.created == 43
    found = {(d.line, d.other_line, d.customer_id, d.reason) for d in report.duplicates}
    assert (42, None, existing, "same phone") in found  # 王建国 is a customer already
    assert (44, 43, None, "same phone") in found  # 李小红 twice in the file
    assert all(d.score >= 0.8 for d in report.duplicates)
    assert {d.line for d in report.duplicates} <= {42, 43, 44}


def test_a_re_imported_erased_person_is_flagged(db, staff, monkeypatch, tmp_path):
    from crm_core.privacy import anonymise_customer

    monkeypatch.setenv("CRM_PRIVACY_KEY", "test-key-for-fingerprints")
    _import(db, staff.steward, b"name,phone,email\nAnn,13800138030,ann@example.com\n")
    ann = _by_name(db, staff.admin, "Ann")
    with db.transaction() as s:
        anonymise_customer(s, actor=staff.admin, customer_id=ann.id, reason="erasure request")
    data = b"name,phone,email\nAnn B,138 0013 8030,new@example.com\nBob,13800138031,\n"
    report = _import(db, staff.steward, data)
    assert report.created == 2
    assert [(f.line, f.field) for f in report.erased] == [(2, "phone")]
    assert "erased on" in report.erased[0].message


def test_rows_without_any_key_are_recognised_on_re_import(db, staff):
    data = "姓名,城市,备注\n王芳,杭州,no phone or e-mail\n王芳,杭州,no phone or e-mail\n".encode()
    first = _import(db, staff.steward, data)
    assert (first.created, first.merged) == (1, 1)  # identical rows are one person
    again = _import(db, staff.steward, data)
    assert (again.created, again.unchanged) == (0, 1)
    assert _count(db) == 1


def test_only_rows_without_a_key_get_a_match_digest_in_the_batch_rows(db, staff):
    """Revision 0050: ``row_key`` (partly indexed) holds the digest of key-less rows only,
    ``row_digest`` the content hash of every row, and a key-less row is found again by it."""
    from crm_core.models import ImportBatchRow

    data = "姓名,手机,城市\n王芳,,杭州\n李雷,13800138000,北京\n".encode()
    first = _import(db, staff.steward, data)
    assert first.created == 2
    with db.transaction() as s:
        rows = s.execute(
            select(Customer.name, ImportBatchRow.row_key, ImportBatchRow.row_digest)
            .join(Customer, Customer.id == ImportBatchRow.customer_id)
            .order_by(ImportBatchRow.row_number)
        ).all()
        assert [(name, key is not None) for name, key, _ in rows] == [
            ("王芳", True),
            ("李雷", False),
        ]
        assert rows[0].row_key == rows[0].row_digest  # a key-less row's digest is its match key
        assert all(len(digest) == 64 for _, _, digest in rows)
        if s.get_bind().dialect.name == "sqlite":
            plan = " ".join(
                str(r[-1])
                for r in s.execute(
                    text(
                        "EXPLAIN QUERY PLAN SELECT customer_id FROM import_batch_rows "
                        "WHERE row_key IN ('a', 'b')"
                    )  # fmt: skip
                )
            )
            assert "ix_import_batch_rows_row_key" in plan
    again = _import(db, staff.steward, data)
    assert (again.created, again.unchanged) == (0, 2)
    assert _count(db) == 2


def test_reimport_changes_nothing_when_a_person_spans_chunks(db, staff, monkeypatch):
    from crm_core.importing import reading

    monkeypatch.setattr(reading, "CHUNK_ROWS", 2)  # rows 1-2, 3-4, 5: Ann is in two chunks
    data = (
        b"name,email,city\n"
        b"Ann Lee,ann@example.com,Paris\n"
        b"Bo Chen,bo@example.com,Oslo\n"
        b"Cy Wu,cy@example.com,Rome\n"
        b"Ann Li,ANN@example.com,Lyon\n"
        b"Di Ma,di@example.com,Bonn\n"
    )
    first = _import(db, staff.steward, data)
    assert (first.created, first.updated) == (4, 1)
    ann = _by_name(db, staff.admin, "Ann Li")
    assert ann.city == "Lyon"
    with db.transaction() as s:
        versions = dict(s.execute(select(Customer.id, Customer.version)).all())
    for _ in range(2):
        again = _import(db, staff.steward, data)
        assert (again.created, again.updated, again.unchanged) == (0, 0, 5)
        with db.transaction() as s:
            assert dict(s.execute(select(Customer.id, Customer.version)).all()) == versions
    # after someone edits Ann, the file's content applies again (it says something new)
    _edit(db, staff.admin, ann, city="Nice")
    third = _import(db, staff.steward, data)
    assert (third.updated, third.unchanged) == (2, 3)  # both of Ann's rows apply again
    assert _by_name(db, staff.admin, "Ann Li").city == "Lyon"
    fourth = _import(db, staff.steward, data)
    assert (fourth.updated, fourth.unchanged) == (0, 5)


def test_an_update_by_import_keeps_the_search_index(db, staff):
    from sqlalchemy import text

    _import(db, staff.steward, b"name,email,tags\nAnn Lee,ann@example.com,\nBo Chen,bo@x.org,\n")
    renamed = b"name,email,tags\nAnnabel Quist,ann@example.com,golf\nBo Chen,bo@x.org,\n"

    def names(query):
        with db.transaction() as s:
            found = customer_service.search_customers(s, actor=staff.admin, query=query)
            return [c.name for c in found]

    with db.transaction() as s:  # a preview renames inside a savepoint and rolls it back
        preview_import(s, actor=staff.steward, source=renamed)
    assert names("Quist") == [] and names("Ann Lee") == ["Ann Lee"]
    report = _import(db, staff.steward, renamed)
    assert (report.updated, report.unchanged) == (1, 1)
    assert names("Quist") == ["Annabel Quist"] and names("Ann Lee") == []
    if db.engine.dialect.name == "sqlite":
        with db.transaction() as s:
            s.execute(text("INSERT INTO customer_fts(customer_fts) VALUES ('integrity-check')"))
            triggers = s.scalars(text("SELECT name FROM sqlite_master WHERE type='trigger'"))
            assert "customer_fts_au" in set(triggers)  # back for every other writer
    _edit(db, staff.admin, _by_name(db, staff.admin, "Annabel Quist"), name="Annabel Roux")
    assert names("Roux") == ["Annabel Roux"] and names("Quist") == []


def test_rows_shaped_in_worker_processes_import_as_in_one(db, staff, monkeypatch):
    from crm_core.importing import batches, reading

    data = (
        "姓名,手机,邮箱,生日,备注\n"
        "王芳,13800138000,wf@example.com,1990-05-03,a\n"
        "王芳,138 0013 8000,,,merged by phone\n"
        "李雷,,,1990-02-30,a bad date\n"
        "'=韩梅梅,,,,formula guarded\n"
        "张三,not a phone,,,\n"
        "赵四,,,,no key\n"
        "赵四,,,,no key\n"
    ).encode()

    def outcome():
        with db.transaction() as s:
            report = preview_import(
                s, actor=staff.steward, source=data, options=ImportOptions(all_or_nothing=False)
            )
        return report.counts(), report.issues, report.rejects_csv()

    serial = outcome()
    monkeypatch.setattr(batches, "PARALLEL_SHAPING_FROM", 1)
    monkeypatch.setattr(batches, "_SHAPE_PART", 2)
    assert outcome() == serial
    # the workers are forked once for the whole file, not once per chunk
    pools = []

    class Counted(batches.ProcessPoolExecutor):
        def __init__(self, *args, **kwargs) -> None:
            pools.append(kwargs.get("initializer"))
            super().__init__(*args, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(batches, "ProcessPoolExecutor", Counted)
        patched.setattr(reading, "CHUNK_ROWS", 2)
        patched.setattr(batches, "PARALLEL_SHAPING_FROM", 10**9)
        in_chunks = outcome()
        assert pools == []
        patched.setattr(batches, "PARALLEL_SHAPING_FROM", 1)
        assert outcome() == in_chunks
        assert len(pools) == 1  # four chunks
    assert serial[0]["merged"] == 2 and serial[0]["invalid"] == 2
    report = _import(db, staff.steward, data, all_or_nothing=False)
    assert report.counts() == serial[0]
    assert _by_name(db, staff.admin, "=韩梅梅").notes == "formula guarded"
    again = _import(db, staff.steward, data, all_or_nothing=False)
    assert (again.created, again.updated, again.unchanged) == (0, 0, report.created)


def _schema(db) -> list[tuple[str, str]]:
    from sqlalchemy import text

    with db.transaction() as s:
        found = s.execute(text("SELECT type, name FROM sqlite_master ORDER BY type, name"))
        return [(t, n) for t, n in found]


def _search_index_intact(db) -> None:
    from sqlalchemy import text

    if db.engine.dialect.name == "sqlite":
        with db.transaction() as s:
            s.execute(text("INSERT INTO customer_fts(customer_fts) VALUES ('integrity-check')"))


# One person's keys spread over one-row chunks: line 3 changes nothing at first (its name
# only differs by a space), line 4 changes the record after it; line 5 adds a second phone
# that line 6 then brings as the first phone of somebody else; line 7 renames that one.
SPREAD = (
    "姓名,邮箱,手机,来源,城市\n"
    "张三,zhang@example.com,,ads,\n"
    "张三 ,zhang@example.com,,ads,\n"
    "张三,zhang@example.com,,web,\n"
    "李四,li@example.com,13800138000,,\n"
    "李四,li@example.com,13912345678,,\n"
    "王五,,13912345678,,\n"
    "王五五,,13912345678,,上海\n"
).encode()


def test_reimport_with_keys_spread_over_chunks_changes_nothing(db, staff, monkeypatch):
    from crm_core.importing import batches, reading

    monkeypatch.setattr(reading, "CHUNK_ROWS", 1)
    monkeypatch.setattr(batches, "DEFER_FROM_ROWS", 2)  # from the second chunk on
    monkeypatch.setattr(batches, "DEFER_SEARCH_FROM_ROWS", 3)  # and the search index later
    before = _schema(db) if db.engine.dialect.name == "sqlite" else None
    first = _import(db, staff.steward, SPREAD)
    assert (first.created, first.updated, first.unchanged, first.invalid) == (3, 3, 1, 0)
    assert _by_name(db, staff.admin, "张三").source == "web"
    wang = _by_name(db, staff.admin, "王五五")
    assert wang.phones == ["+8613912345678"] and wang.city == "上海"
    again = _import(db, staff.steward, SPREAD)
    assert again.counts() == {
        "total": 7,
        "created": 0,
        "updated": 0,
        "unchanged": 7,
        "skipped": 0,
        "invalid": 0,
        "merged": 0,
    }
    assert _by_name(db, staff.admin, "张三").source == "web"
    assert _count(db) == 3
    if before is not None:
        assert _schema(db) == before  # every index built again, the triggers back
    _search_index_intact(db)
    with db.transaction() as s:  # created and changed while the search index waited
        found = customer_service.search_customers(s, actor=staff.admin, query="王五五")
        assert [c.name for c in found] == ["王五五"]
        assert customer_service.search_customers(s, actor=staff.admin, query="13912345678")


def test_a_preview_does_not_build_the_indexes_its_rollback_brings_back(db, staff, monkeypatch):
    """A big preview sets the secondary indexes and the search index aside like an import,
    but does not build them again at its end (its savepoint's rollback restores them): the
    counts are a commit's, the schema and the search index are as before, and only the
    commit builds indexes."""
    from sqlalchemy import event

    from crm_core.importing import batches, preview_import, reading

    _create_ann(db, staff)
    monkeypatch.setattr(reading, "CHUNK_ROWS", 2)
    monkeypatch.setattr(batches, "DEFER_FROM_ROWS", 1)
    monkeypatch.setattr(batches, "DEFER_SEARCH_FROM_ROWS", 1)
    sqlite = db.engine.dialect.name == "sqlite"
    before = _schema(db) if sqlite else None
    built: list[str] = []

    def count(conn, cursor, statement, *args) -> None:
        if statement.lstrip().upper().startswith("CREATE INDEX"):
            built.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    rows = "".join(f"Person {i},p{i}@example.com,1390000{i:04d}\n" for i in range(9))
    data = f"name,email,phone\n{rows}Ann Lee,ann@example.com,\n".encode()
    try:
        with db.transaction() as s:
            preview = preview_import(s, actor=staff.steward, source=data, file_name="p.csv")
        assert (preview.created, preview.unchanged, built) == (9, 1, [])
        assert _count(db) == 1
        if before is not None:
            assert _schema(db) == before
        _search_index_intact(db)
        with db.transaction() as s:
            found = customer_service.search_customers(s, actor=staff.admin, query="Ann")
            assert [c.name for c in found] == ["Ann Lee"]
        report = _import(db, staff.steward, data)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert report.counts() == preview.counts()
    assert bool(built) == sqlite  # the commit builds them again (SQLite sets them aside)
    if before is not None:
        assert _schema(db) == before
    _search_index_intact(db)
    with db.transaction() as s:
        assert len(customer_service.search_customers(s, actor=staff.admin, query="Person")) == 9


def _create_ann(db, staff) -> None:
    """Ann, entered by hand (not by an import)."""
    with db.transaction() as s:
        customer_service.create_customer(
            s,
            actor=staff.admin,
            data={"name": "Ann Lee", "emails": ["ann@example.com"], "city": "Paris"},
        )


def test_reimport_changes_nothing_when_a_later_row_changes_an_existing_customer(
    db, staff, monkeypatch
):
    """A row that changes nothing in a customer that was there before the import, then a
    later row of the same file (another chunk) that changes it: a re-import must not apply
    the first row again (it would undo the second, which would then be applied again)."""
    from crm_core.importing import reading

    _create_ann(db, staff)
    monkeypatch.setattr(reading, "CHUNK_ROWS", 1)
    data = b"name,email,city\nAnn Lee,ann@example.com,Paris\nAnn Lee,ann@example.com,Lyon\n"
    first = _import(db, staff.steward, data)
    assert (first.created, first.updated, first.unchanged) == (0, 1, 1)
    ann = _by_name(db, staff.admin, "Ann Lee")
    assert ann.city == "Lyon"
    with db.transaction() as s:
        audits = s.scalar(select(func.count()).select_from(AuditEntry))
    again = _import(db, staff.steward, data)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    after = _by_name(db, staff.admin, "Ann Lee")
    assert (after.city, after.version) == ("Lyon", ann.version)
    with db.transaction() as s:  # only the import's own entry, no customer change
        assert s.scalar(select(func.count()).select_from(AuditEntry)) == audits + 1
    # the first import's batch can still be reverted: only the later row changed Ann
    with db.transaction() as s:
        assert revert_check(s, actor=staff.steward, batch_id=first.batch_id) == []


def test_an_import_that_changed_nothing_in_a_customer_does_not_block_its_revert(db, staff):
    """Rows that changed nothing in customers the import did not otherwise touch are not
    kept as the import's rows: a later edit of such a customer does not block the revert."""
    _create_ann(db, staff)
    data = b"name,email,city\nAnn Lee,ann@example.com,Paris\nBo Chen,bo@example.com,Oslo\n"
    report = _import(db, staff.steward, data)
    assert (report.created, report.unchanged) == (1, 1)
    _edit(db, staff.admin, _by_name(db, staff.admin, "Ann Lee"), city="Nice")
    with db.transaction() as s:
        assert revert_check(s, actor=staff.steward, batch_id=report.batch_id) == []


def test_rejected_import_in_chunks_leaves_the_database_as_it_was(db, staff, monkeypatch):
    from crm_core.importing import batches, reading

    _import(db, staff.steward, b"name,email\nAnn Lee,ann@example.com\n")
    monkeypatch.setattr(reading, "CHUNK_ROWS", 2)
    monkeypatch.setattr(batches, "DEFER_FROM_ROWS", 1)
    monkeypatch.setattr(batches, "DEFER_SEARCH_FROM_ROWS", 1)
    before = _schema(db) if db.engine.dialect.name == "sqlite" else None
    rows = "".join(f"Person {i},p{i}@example.com\n" for i in range(9))
    data = f"name,email\n{rows}Bad,not-an-email\nAnn Lee,ann@example.com\n".encode()
    with pytest.raises(ImportRejected):
        _import(db, staff.steward, data)
    assert _count(db) == 1 and _count(db, ImportBatch) == 1
    if before is not None:
        assert _schema(db) == before
    _search_index_intact(db)
    with db.transaction() as s:
        assert customer_service.search_customers(s, actor=staff.admin, query="Person") == []
        found = customer_service.search_customers(s, actor=staff.admin, query="Ann")
        assert [c.name for c in found] == ["Ann Lee"]
    report = _import(db, staff.steward, data, all_or_nothing=False)
    assert (report.created, report.unchanged, report.invalid) == (9, 1, 1)
    if before is not None:
        assert _schema(db) == before
    _search_index_intact(db)
    with db.transaction() as s:
        assert len(customer_service.search_customers(s, actor=staff.admin, query="Person")) == 9


def test_the_row_key_migration_keeps_earlier_key_less_rows_found(db, staff):
    """Revision 0050 copies ``row_digest`` into ``row_key`` for batch rows written before it,
    so a key-less row imported then is still recognised; its downgrade brings the old index
    back."""
    from alembic import command

    from crm_core.migrate import alembic_config, upgrade

    data = "姓名,城市\n王芳,杭州\n".encode()
    assert _import(db, staff.steward, data).created == 1
    cfg = alembic_config(db.engine)
    with db.engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "0050-1")
    with db.engine.connect() as conn:
        indexes = {i["name"] for i in inspect(conn).get_indexes("import_batch_rows")}
        assert "ix_import_batch_rows_row_digest" in indexes
        assert "ix_import_batch_rows_row_key" not in indexes
    upgrade(db.engine)
    with db.engine.connect() as conn:
        keys = conn.execute(text("SELECT row_key, row_digest FROM import_batch_rows")).all()
        assert [k == d and k is not None for k, d in keys] == [True]
    again = _import(db, staff.steward, data)
    assert (again.created, again.unchanged) == (0, 1)
    assert _count(db) == 1


def test_the_search_index_is_filled_while_the_import_waits_for_its_workers(db, staff, monkeypatch):
    """Customers written by earlier chunks are indexed while the import waits for its
    worker processes (``_DeferredIndexes.fill_some``), in ascending ids, the rest at the
    end; the index agrees with the customers and finds every one of them, also one an
    import row updates after it was indexed."""
    from crm_core import bulk
    from crm_core.importing import batches, reading

    fills: list[bool] = []

    def drained(future, idle):  # the workers are never ready before the idle work is done
        while idle is not None and idle():
            fills.append(True)
        return future.result()

    monkeypatch.setattr(bulk, "_when_done", drained)
    monkeypatch.setattr(bulk, "PARALLEL_FROM", 1)  # forked workers for every chunk
    monkeypatch.setattr(reading, "CHUNK_ROWS", 3)
    monkeypatch.setattr(batches, "DEFER_FROM_ROWS", 1)
    monkeypatch.setattr(batches, "DEFER_SEARCH_FROM_ROWS", 1)
    monkeypatch.setattr(batches, "IDLE_FILL_ROWS", 2)
    rows = "".join(f"Person {i},p{i}@example.com\n" for i in range(10))
    data = f"name,email\n{rows}Renamed Person,p1@example.com\n".encode()
    report = _import(db, staff.steward, data)
    assert (report.created, report.updated) == (10, 1)
    if db.engine.dialect.name == "sqlite":
        assert fills  # some customers were indexed before the end
    _search_index_intact(db)
    with db.transaction() as s:
        found = customer_service.search_customers(s, actor=staff.admin, query="Person")
        assert len(found) == 10
        renamed = customer_service.search_customers(s, actor=staff.admin, query="renamed")
        assert [c.name for c in renamed] == ["Renamed Person"]


def test_waiting_for_a_prepared_chunk_does_idle_work_until_it_is_ready():
    from concurrent.futures import Future

    from crm_core.bulk import _when_done

    future: Future[str] = Future()
    calls = []

    def idle() -> bool:
        calls.append(1)
        if len(calls) == 3:
            future.set_result("chunk")
        return True

    assert _when_done(future, idle) == "chunk"
    assert len(calls) == 3  # not called again once the chunk is ready
    ready: Future[str] = Future()
    ready.set_result("next")
    assert _when_done(ready, lambda: pytest.fail("idle work while a chunk is ready")) == "next"
    nothing: Future[str] = Future()
    nothing.set_result("last")
    assert _when_done(nothing, None) == "last"
