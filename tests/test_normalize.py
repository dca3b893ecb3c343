"""The foundation's normalisers: the fast path for Chinese mobiles must agree with phonenumbers."""

from __future__ import annotations

import random

import phonenumbers
import pytest

from crm_core.errors import InvalidInput
from crm_core.normalize import _fast_cn_mobile, normalize_phone


def _reference(raw: str, region: str) -> str | None:
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _spellings(national: str) -> list[str]:
    a, b, c = national[:3], national[3:7], national[7:]
    return [
        national,
        f"{a} {b} {c}",
        f"{a}-{b}-{c}",
        f"+86 {a} {b} {c}",
        f"+86-{national}",
        f"0086 {national}",
        f"86{national}",
        f"(+86) {a}{b}{c}",
    ]


def test_fast_path_agrees_with_phonenumbers_on_random_numbers() -> None:
    rng = random.Random(7)
    checked = fast = 0
    for _ in range(3000):
        national = "1" + "".join(rng.choice("0123456789") for _ in range(10))
        for raw in _spellings(national):
            for region in ("CN", "US"):
                got = _fast_cn_mobile(raw, region)
                if got is not None:
                    fast += 1
                    assert got == _reference(raw, region), (raw, region)
                checked += 1
    # the fast path is taken for most valid spellings and never disagrees when it is
    assert fast > checked // 4


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("138 0013 8000", "CN", "+8613800138000"),
        ("+86-138-0013-8000", "US", "+8613800138000"),
        ("010 6552 9988", "CN", "+861065529988"),
        ("+1 (415) 555-2671", "CN", "+14155552671"),
        ("020 7946 0018", "GB", "+442079460018"),
    ],
)
def test_normalize_phone_forms(raw: str, region: str, e164: str) -> None:
    assert normalize_phone(raw, region=region) == e164


@pytest.mark.parametrize("raw", ["138 0013 800", "12345678901", "+86 100 0000 0000", "abc"])
def test_invalid_phones_name_the_field(raw: str) -> None:
    with pytest.raises(InvalidInput) as err:
        normalize_phone(raw, region="CN", field="phones[1]")
    assert err.value.field == "phones[1]"
    assert raw in err.value.message


def _reference_email(text: str) -> str | None:
    from email_validator import EmailNotValidError, validate_email

    try:
        result = validate_email(text, check_deliverability=False)
    except EmailNotValidError:
        return None
    local, _, domain = result.normalized.rpartition("@")
    return f"{local}@{domain.lower()}"


def test_email_fast_path_agrees_with_email_validator() -> None:
    from crm_core.datagen import generate
    from crm_core.normalize import _check_email

    emails = [
        e for e in generate(2000, seed=3, history=False).customers["email"] if isinstance(e, str)
    ]
    odd = [
        "Wang.Wei@Example.COM",
        "a..b@qq.com",
        ".a@qq.com",
        "a.@qq.com",
        "x@localhost",
        "x@test",
        "x@invalid",
        "x@163",
        "x@-bad-.com",
        "x@exa_mple.com",
        "李@例子.中国",
        "a+tag@Gmail.com",
        "a%b@sub.domain.co.uk",
        "a" * 65 + "@qq.com",
        "b@" + "c" * 250 + ".com",
        "x@1.2.3.4",
        "x@[127.0.0.1]",
        '"quoted"@qq.com',
    ]
    for text in [*emails, *odd]:
        _check_email.cache_clear()
        try:
            got: str | None = _check_email(text)
        except InvalidInput:
            got = None
        assert got == _reference_email(text), text


@pytest.mark.parametrize(
    ("value", "clean"),
    [
        ("  Wang   Wei ", "Wang Wei"),
        ("王\u3000伟", "王 伟"),
        ("ＡＢＣ１２３", "ABC123"),
        ("a\tb\nc", "a b c"),
        ("   ", None),
        ("", None),
        (12, "12"),
        (float("nan"), None),
        (None, None),
    ],
)
def test_clean_text(value: object, clean: str | None) -> None:
    from crm_core.normalize import clean_text

    assert clean_text(value) == clean


def test_pinyin_syllables_agree_with_lazy_pinyin() -> None:
    """Word-by-word conversion with memory gives exactly what pypinyin gives for the text."""
    from pypinyin import Style, lazy_pinyin

    from crm_core.datagen import generate
    from crm_core.normalize import pinyin_syllables

    rng = random.Random(11)
    names = [n for n in generate(3000, seed=5, history=False).customers["name"]]
    common = "王李张刘陈杨赵黄周吴伟芳娜敏静丽强磊军洋勇艳杰涛明超秀霞平刚桂英华玉兰长重行乐单曾"
    words = ["重庆", "长沙", "银行", "行长", "音乐", "快乐", "单于", "曾经", "解放"]
    texts = [
        *names,
        *("".join(rng.choice(common) for _ in range(rng.randint(1, 5))) for _ in range(4000)),
        *(rng.choice(words) + rng.choice(common) + rng.choice(words) for _ in range(500)),
        *(
            chr(rng.randint(0x4E00, 0x9FA5)) * 2 + chr(rng.randint(0x3400, 0x4DBF))
            for _ in range(500)
        ),
        "王 伟",
        "王伟A",
        "Wang 伟 3",
        "欧阳娜娜",
        "",
    ]
    for text in texts:
        expected = tuple(
            s.lower() for s in lazy_pinyin(text, style=Style.NORMAL, errors="ignore") if s.strip()
        )
        assert pinyin_syllables(text) == expected, text
    assert pinyin_syllables("重庆银行") == ("chong", "qing", "yin", "hang")


def test_general_phone_fast_path_agrees_with_phonenumbers() -> None:
    """Numbers of every region and type, mutated and written in the usual ways, read against
    every default region: whenever the fast path answers, phonenumbers answers the same."""
    from phonenumbers import PhoneNumberFormat as Fmt
    from phonenumbers import PhoneNumberType as Kind

    from crm_core.normalize import _fast_phone

    rng = random.Random(23)
    regions = sorted(phonenumbers.SUPPORTED_REGIONS)
    kinds = [Kind.FIXED_LINE, Kind.MOBILE, Kind.TOLL_FREE, Kind.PREMIUM_RATE, Kind.VOIP, Kind.UAN]
    inputs: list[tuple[str, str]] = []
    for region in regions:
        for kind in kinds:
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            code = example.country_code
            digits = list(phonenumbers.national_significant_number(example))
            for _ in range(2):
                changed = list(digits)
                changed[rng.randrange(len(changed))] = rng.choice("0123456789")
                if rng.random() < 0.3:
                    changed.insert(rng.randrange(len(changed) + 1), rng.choice("0123456789"))
                national = "".join(changed)
                forms = [
                    f"+{code} {national}",
                    f"(+{code}) {national[:3]}-{national[3:]}",
                    national,
                    "0" + national,
                    f"00{code} {national}",
                    f"011 {code} {national}",
                    f"{code}{national}",
                ]
                try:
                    parsed = phonenumbers.parse(f"+{code}{national}")
                    forms += [phonenumbers.format_number(parsed, f) for f in (Fmt.NATIONAL, 1)]
                except phonenumbers.NumberParseException:
                    pass
                for raw in forms:
                    for default in (region, rng.choice(regions), "CN", "US"):
                        inputs.append((raw, default))
    for _ in range(4000):
        size = rng.randint(4, 16)
        raw = rng.choice(["", "+", "00", "0"]) + "".join(rng.choices("0123456789", k=size))
        inputs.append((raw, rng.choice([*regions, "CN", "CN", "US"])))
    answered = valid = 0
    for raw, default in inputs:
        want = _reference(raw, default)
        got = _fast_phone(raw, default)
        valid += want is not None
        if got is not None:
            answered += 1
            assert got[0] == want, (raw, default)
            assert int(got[1]) == phonenumbers.parse(want).national_number, (raw, default)
    # it answers for nearly every valid number written this way
    assert answered > 0.95 * valid


def test_domain_fast_path_agrees_with_email_validator() -> None:
    from email_validator import EmailNotValidError, validate_email

    from crm_core.normalize import _check_domain

    rng = random.Random(5)
    alphabet = "abcXYZ019-_."
    domains = [
        "".join(rng.choices(alphabet, k=rng.randint(1, 14))) + rng.choice([".com", ".c0", ".x", ""])
        for _ in range(6000)
    ]
    domains += [
        "QQ.COM",
        "sub.example.co.uk",
        "a.test",
        "x.local",
        "onion",
        "a.localhost",
        "ab--cd.com",
        "xn--fiqs8s.cn",
        "-a.com",
        "a-.com",
        "a.-com",
        "a.com-",
        "1.2.3.4",
        "a." + "b" * 63 + ".com",
        "a." + "b" * 64 + ".com",
        ".".join(["abcdefghij"] * 20) + ".com",
    ]
    for domain in domains:
        _check_domain.cache_clear()
        try:
            want: str | None = (
                validate_email(f"a@{domain}", check_deliverability=False)
                .normalized.rpartition("@")[2]
                .lower()
            )
        except EmailNotValidError:
            want = None
        assert _check_domain(domain) == want, domain
