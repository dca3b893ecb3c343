"""Hypothesis-generated files never crash the importer and never leave a partial batch."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from crm_core.errors import CrmError
from crm_core.importing import ImportOptions, run_import
from crm_core.models import AuditEntry, Customer, ImportBatch, ImportBatchRow

HEADERS = ["姓名", "name", "手机", "phone", "邮箱", "email", "公司", "城市", "生日", "标签",
           "备注", "id", "external_id", "lifecycle_stage", "owner", "杂项", "", "姓名"]  # fmt: skip
CELLS = st.one_of(
    st.sampled_from(
        [
            "王伟",
            "John Smith",
            "13800138000",
            "+86 139 1234 5678",
            "12345",
            "a@example.com",
            "bad@",
            "1990年5月3日",
            "31/31/1990",
            "=1+2",
            "@SUM(A1)",
            "-3",
            "1.38001E+10",
            "",
            "  ",
            "vip;微信",
            "lead",
            "VIP",
            "king",
            "admin",
            "nobody",
            '"',
            "a,b",
            "x\ny",
            "1",
        ]
    ),  # fmt: skip
    st.text(max_size=12),
)


@st.composite
def files(draw: st.DrawFn) -> bytes:
    header = draw(st.lists(st.sampled_from(HEADERS), min_size=1, max_size=6))
    rows = draw(st.lists(st.lists(CELLS, min_size=0, max_size=len(header) + 1), max_size=8))
    delimiter = draw(st.sampled_from([",", ";", "\t"]))

    def line(values: list[str]) -> str:
        out = []
        for v in values:
            if draw(st.booleans()) and any(c in v for c in f'{delimiter}"\n'):
                v = '"' + v.replace('"', '""') + '"'
            out.append(v)
        return delimiter.join(out)

    text = "\r\n".join(line(r) for r in [header, *rows])
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "gb18030"]))
    data = text.encode(encoding, errors="replace")
    if draw(st.integers(0, 4)) == 0:  # damage: cut the file or splice random bytes in
        cut = draw(st.integers(0, len(data)))
        data = data[:cut] + draw(st.binary(max_size=20))
    return data


def _state(db) -> tuple[int, int, int, int]:
    with db.transaction() as s:
        return tuple(  # type: ignore[return-value]
            int(s.scalar(select(func.count()).select_from(m)) or 0)
            for m in (Customer, ImportBatch, ImportBatchRow, AuditEntry)
        )


@pytest.mark.parametrize("all_or_nothing", [True, False])
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=files(), mode=st.sampled_from(["create", "update", "upsert"]))
def test_generated_files_never_crash_nor_half_write(db, staff, data, mode, all_or_nothing):
    before = _state(db)
    try:
        with db.transaction() as s:
            report = run_import(
                s,
                actor=staff.steward,
                source=data,
                options=ImportOptions(mode=mode, all_or_nothing=all_or_nothing),
            )
    except CrmError:
        assert _state(db) == before  # nothing at all was written
        return
    customers, batches, batch_rows, _ = _state(db)
    assert customers - before[0] == report.created
    assert batches - before[1] == 1
    assert batch_rows - before[2] == report.created + report.updated
    assert report.total == sum(
        (
            report.created,
            report.updated,
            report.unchanged,
            report.skipped,
            report.invalid,
            report.merged,
        )
    )
    assert not (all_or_nothing and report.invalid)


def test_an_error_late_in_the_file_leaves_nothing_written(db, staff, monkeypatch):
    from crm_core.importing import reading

    monkeypatch.setattr(reading, "CHUNK_ROWS", 2)  # rows 1-4 are written before line 7 is read
    data = "".join(f"n{i},1380013{i:04d}\n" for i in range(5)) + '"broken,13800130099\n'
    before = _state(db)
    with pytest.raises(CrmError, match="line"), db.transaction() as s:
        run_import(
            s,
            actor=staff.steward,
            source=("name,phone\n" + data).encode(),
            options=ImportOptions(all_or_nothing=False),
        )
    assert _state(db) == before
