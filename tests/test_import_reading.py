"""Reading import files: content sniffing, encodings, caps, zip bombs, broken quoting."""

from __future__ import annotations

from pathlib import Path

import pytest

from crm_core.errors import InvalidInput
from crm_core.importing.reading import (
    detect_encoding,
    display_name,
    iter_chunks,
    open_source,
    read_frame,
)

FIXTURES = Path(__file__).parent / "fixtures" / "import"


def _rows(name: str, **kwargs: object) -> tuple[list[str], list[list[str]], str | None, str]:
    spool, info = open_source(FIXTURES / name, **kwargs)  # type: ignore[arg-type]
    with spool:
        chunks = list(iter_chunks(spool, info))
    rows = [r for c in chunks for r in c.rows]
    return chunks[0].header, rows, info.encoding, info.format


def test_gbk_csv_from_chinese_excel_is_detected():
    header, rows, encoding, fmt = _rows("gbk_excel.csv")
    assert (fmt, encoding) == ("csv", "gb18030")
    assert header[:5] == ["姓名", "手机", "电话", "邮箱", "公司"]
    assert rows[1][0] == "李娜" and rows[1][13] == "喜欢电话联系, 下午"
    assert len(rows) == 4


def test_utf8_bom_csv_with_quoted_commas_and_line_breaks():
    header, rows, encoding, _ = _rows("utf8_bom.csv")
    assert encoding == "utf-8-sig"
    assert header[0] == "Name"  # no BOM glued to the first header
    assert rows[0][3] == "Acme, Inc."
    assert rows[1][9] == 'said: "call me"\r\nnext week'


def test_encoding_can_be_overridden():
    _, rows, encoding, _ = _rows("gbk_excel.csv", encoding="gbk")
    assert encoding == "gbk" and rows[0][0] == "王伟"
    with pytest.raises(InvalidInput) as err:
        _rows("gbk_excel.csv", encoding="utf-8")
    assert err.value.field == "encoding" and "choose another encoding" in str(err.value)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("客户".encode("gbk"), "gb18030"),
        ("客户".encode(), "utf-8"),
        (b"\xef\xbb\xbfname", "utf-8-sig"),
        (b"plain ascii", "utf-8"),
    ],
)
def test_detect_encoding(data, expected):
    assert detect_encoding(data, complete=True) == expected


def test_utf16_text_gets_a_hint():
    with pytest.raises(InvalidInput, match="UTF-16"):
        detect_encoding("name".encode("utf-16"))


def test_xlsx_with_text_dates_and_numbers():
    header, rows, _, fmt = _rows("text_cells.xlsx")
    assert fmt == "xlsx"
    assert header == [
        "客户编号",
        "姓名",
        "手机号码",
        "电子邮箱",
        "出生日期",
        "客户等级",
        "城市",
        "邮编",
    ]
    assert rows[0][2] == "13800138002" and rows[0][4] == "1988年7月9日"
    # real number and date cells come out as import text, not 1.38e10 or a timestamp
    assert rows[1][0] == "1002" and rows[1][2] == "13800138003"
    assert rows[1][4] == "1992-02-29" and rows[1][7] == "610000"


def test_format_is_judged_by_content_not_name():
    header, rows, _, fmt = _rows("csv_named.xlsx")
    assert fmt == "csv" and rows == [["Peggy", "peggy@example.com"]]
    with pytest.raises(InvalidInput, match="not a CSV or .xlsx"):
        _rows("pdf_named.csv")
    with pytest.raises(InvalidInput, match="old Excel .xls"):
        _rows("legacy.xls")


def test_zip_bomb_is_refused_before_parsing():
    with pytest.raises(InvalidInput, match="zip bomb"):
        _rows("zip_bomb.xlsx")


def test_zip_without_workbook_is_refused(tmp_path):
    import zipfile

    path = tmp_path / "x.xlsx"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("hello.txt", "hi")
    with pytest.raises(InvalidInput, match="not an Excel .xlsx"):
        _rows(str(path))


def test_broken_quoting_names_the_line():
    with pytest.raises(InvalidInput) as err:
        _rows("broken_quoting.csv")
    assert "quoting" in str(err.value) and "line" in str(err.value)


def test_row_with_too_many_values_names_the_line():
    data = b"name,email\nA,a@example.com\nB,b@example.com,extra,values\n"
    spool, info = open_source(data)
    with spool, pytest.raises(InvalidInput, match="line 3 has 4 values"):
        list(iter_chunks(spool, info))


def test_size_cap(monkeypatch):
    monkeypatch.setenv("CRM_IMPORT_MAX_BYTES", "100")
    with pytest.raises(InvalidInput, match="larger than the import limit"):
        open_source(b"name\n" + b"x" * 200)


def test_row_cap(monkeypatch):
    monkeypatch.setenv("CRM_IMPORT_MAX_ROWS", "3")
    spool, info = open_source(b"name\na\nb\nc\nd\n")
    with spool, pytest.raises(InvalidInput, match="more than 3 rows"):
        list(iter_chunks(spool, info))


def test_chunks_are_bounded_and_keep_line_numbers():
    data = ("name\n" + "".join(f"n{i}\n" for i in range(25))).encode()
    spool, info = open_source(data)
    with spool:
        chunks = list(iter_chunks(spool, info, chunk_rows=10))
    assert [len(c.rows) for c in chunks] == [10, 10, 5]
    assert chunks[1].line_numbers[0] == 12


@pytest.mark.parametrize("data", [b"", b"   \n\n", b"\x00\x01\x02\x03binary\x00"])
def test_empty_or_binary_files_get_a_clear_error(data):
    with pytest.raises(InvalidInput):
        spool, info = open_source(data)
        with spool:
            list(iter_chunks(spool, info))


def test_delimiters_are_sniffed():
    frame = read_frame("姓名;手机\n王伟;13800138000\n".encode())
    assert list(frame.columns) == ["姓名", "手机"] and frame.iloc[0, 1] == "13800138000"
    frame = read_frame(b"name\temail\nA\ta@example.com\n")
    assert list(frame.columns) == ["name", "email"]


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\x\\客户.csv", "客户.csv"),
        ("a\x00b\n.csv", "ab.csv"),
        ("", "upload"),
    ],
)
def test_uploaded_names_are_labels_only(name, label):
    assert display_name(name) == label
