"""Normalisers of the de-duplication engine: parametrised tables, Chinese and English."""

from __future__ import annotations

import pandas as pd
import pytest

from crm_core.dedupe.blocking import blocking_keys, candidate_pairs, frame_key_strings
from crm_core.dedupe.chinese import is_transcription
from crm_core.dedupe.frame import normalize_frame
from crm_core.dedupe.normalize import (
    NORMALIZED_COLUMNS,
    chinese_name_parts,
    name_key,
    normalize_address,
    normalize_city,
    normalize_company,
    normalize_email,
    normalize_name,
    normalize_phone,
    normalize_record,
    to_simplified,
)
from crm_core.dedupe.scoring import prepare
from crm_core.normalize import try_normalize_phone


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("王伟", "王伟"),
        ("王偉", "王伟"),
        (" 王 伟 ", "王伟"),
        ("王伟先生", "王伟"),
        ("李女士", "李"),
        ("陈小姐", "陈"),
        ("Wang Wei", "wang wei"),
        ("  WANG   wei ", "wang wei"),
        ("Wang, Wei", "wei wang"),
        ("ｗａｎｇ　ｗｅｉ", "wang wei"),
        ("Mr. Bill Smith", "bill smith"),
        ("Dr Jane Doe", "jane doe"),
        ("Mrs. Mary-Jane O'Brien", "maryjane obrien"),
        ("José Álvarez Jr.", "jose alvarez"),
        ("Mr", "mr"),
        # a Chinese name keeps its digits and Latin words, not the pinyin of its characters
        ("客户1", "客户1"),
        ("客户 12", "客户12"),
        ("王伟A", "王伟a"),
        ("王伟 David", "王伟david"),
        ("王伟 Wei Wang", "王伟"),
        ("Wang Wei (王伟)", "王伟"),
        ("Jiali Chen (陈嘉丽)", "陈嘉丽"),
        ("Yuhua Lü (吕玉华)", "吕玉华"),
        ("曾小明 Xiaoming Zeng", "曾小明"),
        ("Mr 王伟", "王伟"),
        ("王伟先生 2", "王伟2"),
        ("Store 12", "store 12"),
        ("", None),
        (None, None),
        (float("nan"), None),
    ],
)
def test_normalize_name(raw: object, expected: str | None) -> None:
    assert normalize_name(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("王伟", "wang wei"),
        ("王偉", "wang wei"),
        ("Wang Wei", "wang wei"),
        ("Wei Wang", "wang wei"),
        ("Wang, Wei", "wang wei"),
        ("WANG wei", "wang wei"),
        ("王小明", "wang xiaoming"),
        ("Xiaoming Wang", "wang xiaoming"),
        ("Wang Xiao-Ming", "wang xiaoming"),
        ("欧阳娜娜", "nana ouyang"),
        ("Nana Ouyang", "nana ouyang"),
        ("曾小明", "xiaoming zeng"),
        ("單田芳", "shan tianfang"),
        ("Bill Smith", "smith william"),
        ("William Smith", "smith william"),
        ("Smith, Bill", "smith william"),
        ("Bob Jones", "jones robert"),
        ("Liz Taylor", "elizabeth taylor"),
        ("Elizabeth Taylor", "elizabeth taylor"),
        ("Mike O'Neil", "michael oneil"),
        ("王伟 Wei Wang", "wang wei"),
        ("客户1", "1 hu ke"),
        ("客户2", "2 hu ke"),
        ("王伟A", "a wang wei"),
        ("John Smith 2", "2 john smith"),
        ("John A Smith", "john smith"),
        (None, None),
    ],
)
def test_name_key(raw: object, expected: str | None) -> None:
    assert name_key(raw) == expected


@pytest.mark.parametrize(
    ("left", "right", "alike"),
    [
        ("客户1", "客户2", False),
        ("客户12", "客户 13", False),
        ("王伟A", "王伟B", False),
        ("王伟", "王伟 David", False),
        ("王伟", "王伟 Wei Wang", True),
        ("王伟", "Wei Wang", True),
        ("王偉", "Wang Wei", True),
        ("客户 12", "客户12", True),
    ],
)
def test_names_told_apart_by_digits_or_latin_words_get_different_keys(
    left: str, right: str, alike: bool
) -> None:
    assert (name_key(left) == name_key(right)) is alike


@pytest.mark.parametrize(
    ("token", "chars", "expected"),
    [
        ("wangwei", "王伟", True),
        ("weiwang", "王伟", True),
        ("wei", "王伟", True),
        ("zeng", "曾", True),
        ("ceng", "曾", True),
        ("lu", "吕", True),
        ("lv", "吕", True),
        ("a", "王伟", False),
        ("david", "王伟", False),
        ("wangwe", "王伟", False),
        ("12", "王伟", False),
    ],
)
def test_is_transcription(token: str, chars: str, expected: bool) -> None:
    assert is_transcription(token, chars) is expected


@pytest.mark.parametrize(
    ("name", "parts"),
    [
        ("王伟", ("wang", "wei")),
        ("司马光", ("sima", "guang")),
        ("欧阳", ("ou", "yang")),
        ("", ("", "")),
    ],
)
def test_chinese_name_parts(name: str, parts: tuple[str, str]) -> None:
    assert chinese_name_parts(name) == parts


@pytest.mark.parametrize(
    ("raw", "expected"), [("華為", "华为"), ("臺灣", "台湾"), ("abc", "abc"), ("广州", "广州")]
)
def test_to_simplified(raw: str, expected: str) -> None:
    assert to_simplified(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("华为技术有限公司", "华为技术"),
        ("華為技術有限公司", "华为技术"),
        ("阿里巴巴集团股份有限公司", "阿里巴巴"),
        ("万科企业股份有限公司", "万科企业"),
        ("中信集团", "中信"),
        ("小米科技有限责任公司", "小米科技"),
        ("Acme Co., Ltd.", "acme"),
        ("ACME Corporation", "acme"),
        ("Acme Inc", "acme"),
        ("Acme, Inc.", "acme"),
        ("acme limited", "acme"),
        ("Acme LLC", "acme"),
        ("Acme L.L.C.", "acme"),
        ("Siemens GmbH", "siemens"),
        ("Apple (China) Co., Ltd", "apple"),
        ("Foo & Bar Corp.", "foo and bar"),
        ("Ltd", "ltd"),
        ("", None),
        (None, None),
    ],
)
def test_normalize_company(raw: object, expected: str | None) -> None:
    assert normalize_company(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("WangWei@163.COM", "wangwei@163.com"),
        (" wangwei@163.com ", "wangwei@163.com"),
        ("wang.wei+crm@gmail.com", "wangwei@gmail.com"),
        ("Wang.Wei@GoogleMail.com", "wangwei@gmail.com"),
        ("wang.wei@163.com", "wang.wei@163.com"),
        ("bill+news@acme.com", "bill@acme.com"),
        ("ｗａｎｇ＠ｑｑ．ｃｏｍ", "wang@qq.com"),
        ("not an email", None),
        ("@acme.com", None),
        (None, None),
    ],
)
def test_normalize_email(raw: object, expected: str | None) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13800138000", "+8613800138000"),
        ("138 0013 8000", "+8613800138000"),
        ("138-0013-8000", "+8613800138000"),
        ("+86 138 0013 8000", "+8613800138000"),
        ("+86-13800138000", "+8613800138000"),
        ("008613800138000", "+8613800138000"),
        ("8613800138000", "+8613800138000"),
        ("(+86) 138 0013 8000", "+8613800138000"),
        ("１３８００１３８０００", "+8613800138000"),
        ("010-62345678", "+861062345678"),
        ("(021) 6234 5678", "+862162345678"),
        ("+1 650 253 0000", "+16502530000"),
        ("+44 20 7946 0958", "+442079460958"),
        ("12345", None),
        ("", None),
        (None, None),
    ],
)
def test_normalize_phone(raw: object, expected: str | None) -> None:
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize(
    "raw", ["13800138000", "+86 139 1234 5678", "0086 186-1234-5678", "15012345678", "19912345678"]
)
def test_phone_fast_path_agrees_with_core_normaliser(raw: str) -> None:
    assert normalize_phone(raw) == try_normalize_phone(raw, region="CN")


def test_phone_region() -> None:
    assert normalize_phone("650-253-0000", region="US") == "+16502530000"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("北京", "beijing"),
        ("北京市", "beijing"),
        ("Beijing", "beijing"),
        ("BEIJING City", "beijing"),
        ("廣州市", "guangzhou"),
        ("上海", "shanghai"),
        ("New York", "newyork"),
        ("Zürich", "zurich"),
        (None, None),
    ],
)
def test_normalize_city(raw: object, expected: str | None) -> None:
    assert normalize_city(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("12 Main St.", "12 main street"),
        ("12 MAIN STREET", "12 main street"),
        ("5th Ave, Apt 3", "5th avenue apartment 3"),
        ("北京市朝阳区建国路 88 号", "建国路88号"),
        ("北京市朝陽區建國路88號", "建国路88号"),
        ("广东省深圳市南山区科技路1号", "科技路1号"),
        ("东莞市南城街道中山路8号", "中山路8号"),
        ("市中区人民路5号", "人民路5号"),
        ("滨江大道100号", "滨江大道100号"),
        ("北京市", "北京市"),
        ("", None),
    ],
)
def test_normalize_address(raw: object, expected: str | None) -> None:
    assert normalize_address(raw) == expected


def test_normalize_frame_columns_and_missing_fields() -> None:
    df = pd.DataFrame({"name": ["王偉", None], "email": ["A@B.COM", "x"], "other": [1, 2]})
    norm = normalize_frame(df)
    assert list(norm.columns) == list(NORMALIZED_COLUMNS)
    assert norm["name"].tolist() == ["王伟", None]
    assert norm["name_key"].tolist() == ["wang wei", None]
    assert norm["email"].tolist() == ["a@b.com", None]
    assert norm["email_local"].tolist() == ["a", None]
    assert norm["phone"].tolist() == [None, None]


def test_normalize_frame_keeps_row_order_with_any_index() -> None:
    df = pd.DataFrame({"name": ["b", "a", "b"]}, index=[10, 5, 7])
    assert normalize_frame(df)["name"].tolist() == ["b", "a", "b"]


def test_spellings_of_one_person_share_a_blocking_key() -> None:
    spellings = [
        {"name": "王伟", "city": "北京"},
        {"name": "王偉", "city": "北京市"},
        {"name": "Wang Wei", "city": "Beijing"},
        {"name": "Wei Wang", "city": "beijing"},
        {"name": "Wang, Wei", "city": "Beijing City"},
    ]
    keys = [set(blocking_keys(r)) for r in spellings]
    assert set.intersection(*keys)


def test_blocking_keys_of_one_record() -> None:
    keys = blocking_keys({"name": "王伟", "phone": "138 0013 8000", "email": "WangWei@163.com"})
    assert "phone:+8613800138000" in keys
    assert "email:wangwei@163.com" in keys
    assert blocking_keys({}) == []


def test_oversized_blocks_stay_linear() -> None:
    n = 2_000
    df = pd.DataFrame({"name": [f"person {i}" for i in range(n)], "phone": ["010-62345678"] * n})
    left, right = candidate_pairs(prepare(normalize_frame(df)), block_cap=40, block_window=5)
    assert len(left) <= n * 5
    assert (left < right).all()


MIXED = pd.DataFrame(
    {
        "name": ["王偉先生", "Mr.  Bill\tSmith", "WangWei", None, "N. Vargas", "星辰 软件有限公司"],
        "company": [
            "華為技術有限公司",
            "Acme Co., Ltd.",
            None,
            "x",
            "Juniper Ltd",
            "星辰软件有限公司",
        ],
        "email": ["Wang.Wei+crm@Gmail.com", "bad", None, "a@b.cn", None, "info@xc.cn"],
        "phone": ["138 0013 8000", "+1 650 253 0000", "010-62345678", None, "12345", None],
        "city": ["北京市", "New York", None, "Beijing City", "London", "北京"],
        "address": [
            "北京市朝陽區建國路88號",
            "Apt 4,  12 Main\u3000St.",
            None,
            " ",
            "248 Kelly St",
            "x",
        ],
    }
)


def test_frame_and_record_normalisers_agree() -> None:
    frame = normalize_frame(MIXED)
    for i, record in enumerate(MIXED.to_dict("records")):
        expected = {k: (None if pd.isna(v) else v) for k, v in frame.iloc[i].items()}
        assert normalize_record(record) == expected


def test_record_and_frame_blocking_keys_agree() -> None:
    by_kind = frame_key_strings(normalize_frame(MIXED))
    for i, record in enumerate(MIXED.to_dict("records")):
        from_frame = [keys[i] for keys in by_kind.values() if keys[i] is not None]
        assert blocking_keys(record) == from_frame


# --- the bulk (Arrow) forms give what the scalar normalisers give ------------------------------

TRICKY = {
    "name": [
        "John Smith",
        "Bill  Smith",
        "Mr John Smith",
        "john a smith",
        "Smith, John",
        "Mccall LLP",
        "N. Vargas",
        "Madonna",
        "WangWei",
        "José Álvarez",
        "Bill Gates",
        "Dr.\tWho Knows",
        "王伟",
        "王偉",
        "欧阳娜娜",
        "长孙无忌",
        "王先生",
        "李总经理",
        "单",
        "㐀豈",
        "王伟 David",
        "客户12",
        "北京星辰软件有限公司",
        "星辰软件集团有限公司",
        "深圳丰桥教育咨询股份有限公司",
        "明腾物流(成都)集团有限公司",
        "王　伟",
        "Jiali Chen (陈嘉丽)",
        "先生",
        "有限公司",
    ],
    "company": [
        "Acme Co., Ltd.",
        "Murillo Pte. Ltd.",
        "Mack & Bradley Technologies Pty Ltd",
        "Ltd",
        "Foo L.L.C.",
        "Bar l.l.c (HK)",
        "Baz (Holdings) Limited",
        "Co Ltd",
        "Müller GmbH",
        "Siemens  AG",
        "a_b-c",
        "華為技術有限公司",
        "北京华为技术有限公司",
        "华为",
        "集团有限公司",
        "广东省华为集团股份有限公司",
        "内蒙古自治区伊利集团",
        "北京",
        "北京市公司",
        "上海 华为 公司",
        "明腾物流(成都)集团有限公司",
        "星辰软件有限公司",
        "x",
        "XYZ Group Holdings",
        "P.L.C.\x1cFoo",
        "Fish & Chips Ltd.",
        "ABC Inc. (Asia)",
        "9 Ltd",
        "公司",
        "Société Générale SA",
    ],
    "address": [
        "12 Main St.",
        "Apt 4,  12 Main\u3000St.",
        "367 Heath Avenue, Suite 220",
        "No 5 High Rd",
        "Flat 2b, 10 Downing St",
        "Room 101",
        "#12-03 Orchard Rd",
        "no",
        "a_b",
        "Rue de l'Église",
        "北京市朝陽區建國路88號",
        "北京市朝阳区建国路88号",
        "建国路 88 号 A座1201室",
        "滨江大道75号金茂大厦B座1803室",
        "新华路112号",
        "广东省深圳市南山区科技园",
        "花园路",
        "#5 长安街",
        "長安街1號",
        "上海市 浦东新区 世纪大道100号",
        "中山路12号B座",
        "Unit 5 中山路",
        "x",
        "路",
        "1 Suite",
        "Suite 5 Floor 3 Tower",
        "12 W 34th St",
        "88號",
        "北京市",
        "镇江路1号",
    ],
    "city": ["北京市", "New York", "Beijing City", "上海", "London", "x"] * 5,
    "email": ["Wang.Wei+crm@Gmail.com", "bad", None, "a@b.cn", "x@y.z.", "A@B.COM"] * 5,
    "phone": [
        "138 0013 8000",
        "+1 650 253 0000",
        "010-62345678",
        None,
        "12345",
        "+44 (0)20 7946 0018",
    ]
    * 5,
}


def _tricky_frame(copies: int = 1) -> pd.DataFrame:
    frame = pd.DataFrame(TRICKY)
    if copies > 1:  # distinct values: every copy spelt a little differently
        frame = pd.concat(
            [
                frame.map(lambda v, i=i: f"{v} {i}" if isinstance(v, str) else v)
                for i in range(copies)
            ],
            ignore_index=True,
        )
    return frame


def test_bulk_normalisers_agree_with_the_scalar_ones() -> None:
    df = _tricky_frame()
    norm = normalize_frame(df)
    for i, record in enumerate(df.to_dict("records")):
        expected = normalize_record(record)
        got = {k: (None if pd.isna(v) else v) for k, v in norm.iloc[i].items()}
        assert got == expected, record


def test_normalising_in_threads_gives_the_same_columns() -> None:
    from crm_core.dedupe.frame import PARALLEL_MIN_ROWS, normalize_columns

    df = _tricky_frame(copies=PARALLEL_MIN_ROWS // len(TRICKY["name"]) + 1)
    one = normalize_columns(df, threads=1)
    two = normalize_columns(df, threads=2)
    for column in NORMALIZED_COLUMNS:
        assert one[column].values.tolist() == two[column].values.tolist()
    sample = df.iloc[:: len(df) // 50]
    norm = normalize_frame(sample)
    for i, record in enumerate(sample.to_dict("records")):
        assert {k: (None if pd.isna(v) else v) for k, v in norm.iloc[i].items()} == (
            normalize_record(record)
        )


def test_pinyin_table_agrees_with_pypinyin() -> None:
    from pypinyin import Style, lazy_pinyin

    from crm_core.dedupe.chinese import pinyin, pinyin_string

    for code in [*range(0x4E00, 0x9FA6, 7), *range(0x3400, 0x4DB6, 97), *range(0xF900, 0xFA2E, 5)]:
        char = chr(code)
        found = lazy_pinyin(char, style=Style.NORMAL, errors="ignore")
        assert pinyin_string(char) == (found[0].lower() if found else "")
    for name in ["王伟", "欧阳娜娜", "a王b伟1", "長孫無忌", "", "abc", "吕布"]:
        assert pinyin_string(name) == "".join(pinyin(name))
