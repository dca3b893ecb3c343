"""Chinese text for matching: traditional to simplified characters, pinyin, surnames.

Conversion is character by character with OpenCC's own ``t2s`` character table (fast enough
for millions of names and addresses); the few characters whose simplified form depends on
the phrase go through OpenCC's full phrase-aware conversion.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
CJK_ONLY = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+$")
CJK_RE2 = r"[\x{3400}-\x{4dbf}\x{4e00}-\x{9fff}\x{f900}-\x{faff}]"
"""``CJK`` written for RE2 (Arrow's regular expressions)."""

_COMPOUND_SURNAMES = (
    "欧阳 司马 上官 诸葛 东方 皇甫 尉迟 公孙 慕容 令狐 夏侯 长孙 宇文 司徒 端木 独孤 南宫 西门 "
    "轩辕 澹台 呼延 万俟 申屠 钟离 闻人 赫连 单于 太史 司空 东郭 百里 第五"
)
COMPOUND_SURNAMES: frozenset[str] = frozenset(_COMPOUND_SURNAMES.split())
"""Two-character surnames (simplified)."""

SURNAME_READINGS: dict[str, str] = {
    "单": "shan",
    "曾": "zeng",
    "解": "xie",
    "区": "ou",
    "仇": "qiu",
    "朴": "piao",
    "查": "zha",
    "翟": "zhai",
    "乐": "yue",
    "缪": "miao",
    "覃": "qin",
    "盖": "ge",
    "种": "chong",
    "秘": "bi",
    "召": "shao",
    "柏": "bai",
    "繁": "po",
    "句": "gou",
    "员": "yun",
    "褚": "chu",
    "沈": "shen",
    "任": "ren",
    "长孙": "zhangsun",
    "尉迟": "yuchi",
    "万俟": "moqi",
    "单于": "chanyu",
}
"""Readings of surnames that differ from the character's most common reading."""


class _Simplifier:
    """Traditional -> simplified with OpenCC's tables, loaded on first use."""

    def __init__(self) -> None:
        self.table: dict[int, str] | None = None
        self.phrase_chars: frozenset[str] = frozenset()
        self.traditional: frozenset[str] = frozenset()
        self._convert: Callable[[str], str] = str

    def load(self) -> None:
        import opencc

        self._convert = opencc.OpenCC("t2s").convert
        folder = Path(str(opencc.__file__)).parent / "dictionary"
        table: dict[int, str] = {}
        ambiguous: set[str] = set()
        try:
            for line in (folder / "TSCharacters.txt").read_text(encoding="utf-8").splitlines():
                source, _, targets = line.partition("\t")
                options = targets.split()
                if len(source) != 1 or not options:
                    continue
                if len(options) > 1:
                    ambiguous.add(source)
                table[ord(source)] = options[0]
            for line in (folder / "TSPhrases.txt").read_text(encoding="utf-8").splitlines():
                phrase, _, targets = line.partition("\t")
                converted = phrase.translate(table)
                if targets.split() and converted != targets.split()[0]:
                    ambiguous.update(phrase)
        except OSError:  # another OpenCC build without the text tables: phrase conversion only
            table, ambiguous = {}, set()
        self.table = table
        self.phrase_chars = frozenset(c for c in ambiguous if ord(c) in table)
        self.traditional = frozenset(chr(k) for k, v in table.items() if chr(k) != v)

    def __call__(self, text: str) -> str:
        if self.table is None:
            self.load()
        if not self.table:
            return str(self._convert(text))
        if self.traditional.isdisjoint(text):
            return text
        if not self.phrase_chars.isdisjoint(text):
            return str(self._convert(text))
        return text.translate(self.table)


_simplifier = _Simplifier()


def traditional_characters() -> frozenset[str] | None:
    """The characters ``to_simplified`` changes, or ``None`` when it converts every text
    with OpenCC (no character table): text holding none of them is already simplified."""
    if _simplifier.table is None:
        _simplifier.load()
    return _simplifier.traditional if _simplifier.table else None


def to_simplified(text: str) -> str:
    """Traditional Chinese characters of ``text`` turned into simplified ones (the rest kept)."""
    if not CJK.search(text):
        return text
    return _simplifier(text)


_char_pinyin: dict[str, str] = {}


def _pinyin_of_char(char: str) -> str:
    syllable = _char_pinyin.get(char)
    if syllable is None:
        from pypinyin import Style, lazy_pinyin

        found = lazy_pinyin(char, style=Style.NORMAL, errors="ignore")
        syllable = found[0].lower() if found else ""
        _char_pinyin[char] = syllable
    return syllable


class _PinyinTable(dict[int, str | None]):
    """``str.translate`` table: a Chinese character to its syllable (``_pinyin_of_char``),
    anything else to ``None`` (dropped); filled on first sight of each character."""

    def __missing__(self, code: int) -> str | None:
        char = chr(code)
        syllable = _pinyin_of_char(char) if CJK.match(char) else None
        self[code] = syllable
        return syllable


_PINYIN_TABLE = _PinyinTable()


def pinyin_string(text: str) -> str:
    """The pinyin syllables of ``text`` joined (``"".join(pinyin(text))``), in one
    ``str.translate`` call."""
    return text.translate(_PINYIN_TABLE)


def pinyin(text: str) -> list[str]:
    """Pinyin syllables (no tones) of the Chinese characters of ``text``, one per character."""
    out = []
    for char in text:
        syllable = _char_pinyin.get(char)
        if syllable is None:
            if not CJK.match(char):
                continue
            syllable = _pinyin_of_char(char)
        if syllable:
            out.append(syllable)
    return out


@lru_cache(maxsize=50_000)
def readings(char: str) -> frozenset[str]:
    """Every pinyin reading (no tones) of one Chinese character, heteronyms and the surname
    reading included, with ``v`` also written ``u`` (``吕`` -> ``{"lv", "lu"}``)."""
    from pypinyin import Style
    from pypinyin import pinyin as all_pinyin

    found = {r.lower() for rs in all_pinyin(char, style=Style.NORMAL, heteronym=True) for r in rs}
    if char in SURNAME_READINGS:
        found.add(SURNAME_READINGS[char])
    found |= {r.replace("v", "u") for r in found if "v" in r}
    return frozenset(r for r in found if r.isascii() and r.isalpha())


def is_transcription(token: str, chars: str) -> bool:
    """Whether the Latin ``token`` is written with pinyin readings of the characters of
    ``chars`` (``wei``, ``wangwei`` or ``weiwang`` for ``王伟``), so a name giving both says
    nothing more than its characters; ``a`` or ``david`` next to ``王伟`` is not."""
    options = set().union(*(readings(c) for c in chars if CJK.match(c))) if chars else set()
    if not options or not token.isascii() or not token.isalpha():
        return False
    longest = max(len(o) for o in options)
    reachable = [True] + [False] * len(token)
    for end in range(1, len(token) + 1):
        reachable[end] = any(
            reachable[start] and token[start:end] in options
            for start in range(max(0, end - longest), end)
        )
    return reachable[-1]


def chinese_name_parts(name: str) -> tuple[str, str]:
    """Pinyin of the surname and of the given name of a Chinese name
    (``王小明`` -> ``("wang", "xiaoming")``); compound surnames such as 欧阳 are recognised."""
    chars = name if CJK_ONLY.match(name) else "".join(CJK_RUN.findall(name))
    if not chars:
        return "", ""
    surname_len = 2 if len(chars) > 2 and chars[:2] in COMPOUND_SURNAMES else 1
    surname, given = chars[:surname_len], chars[surname_len:]
    surname_py = SURNAME_READINGS.get(surname) or surname.translate(_PINYIN_TABLE)
    return surname_py, given.translate(_PINYIN_TABLE)


_SYLLABLES = (
    "a ai an ang ao ba bai ban bang bao bei ben beng bi bian biao bie bin bing bo bu ca cai "
    "can cang cao ce cen ceng cha chai chan chang chao che chen cheng chi chong chou chu "
    "chua chuai chuan chuang chui chun chuo ci cong cou cu cuan cui cun cuo da dai dan dang "
    "dao de den deng di dian diao die ding diu dong dou du duan dui dun duo e ei en eng er "
    "fa fan fang fei fen feng fiao fo fou fu ga gai gan gang gao ge gei gen geng gong gou gu "
    "gua guai guan guang gui gun guo ha hai han hang hao he hei hen heng hong hou hu hua "
    "huai huan huang hui hun huo ji jia jian jiang jiao jie jin jing jiong jiu ju juan jue "
    "jun ka kai kan kang kao ke ken keng kong kou ku kua kuai kuan kuang kui kun kuo la lai "
    "lan lang lao le lei leng li lia lian liang liao lie lin ling liu lo long lou lu luan "
    "lun luo lv lve ma mai man mang mao me mei men meng mi mian miao mie min ming miu mo mou "
    "mu na nai nan nang nao ne nei nen neng ni nian niang niao nie nin ning niu nong nou nu "
    "nuan nun nuo nv nve o ou pa pai pan pang pao pei pen peng pi pian piao pie pin ping po "
    "pou pu qi qia qian qiang qiao qie qin qing qiong qiu qu quan que qun ran rang rao re "
    "ren reng ri rong rou ru rua ruan rui run ruo sa sai san sang sao se sen seng sha shai "
    "shan shang shao she shen sheng shi shou shu shua shuai shuan shuang shui shun shuo si "
    "song sou su suan sui sun suo ta tai tan tang tao te teng ti tian tiao tie ting tong tou "
    "tu tuan tui tun tuo wa wai wan wang wei wen weng wo wu xi xia xian xiang xiao xie xin "
    "xing xiong xiu xu xuan xue xun ya yan yang yao ye yi yin ying yo yong you yu yuan yue "
    "yun za zai zan zang zao ze zei zen zeng zha zhai zhan zhang zhao zhe zhen zheng zhi "
    "zhong zhou zhu zhua zhuai zhuan zhuang zhui zhun zhuo zi zong zou zu zuan zui zun zuo "
)
PINYIN_SYLLABLES: frozenset[str] = frozenset(_SYLLABLES.split())
"""Every pinyin syllable without tones (ü written v)."""


@lru_cache(maxsize=1)
def _surname_syllables() -> frozenset[str]:
    common = (
        "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
        "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝"
        "龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞"
        "左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕"
        "屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧"
        "闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝"
    )
    readings = {SURNAME_READINGS.get(c) or "".join(pinyin(c)) for c in common}
    readings.update(SURNAME_READINGS.get(s) or "".join(pinyin(s)) for s in COMPOUND_SURNAMES)
    return frozenset(readings)


def _is_syllables(text: str) -> bool:
    """True when ``text`` splits into pinyin syllables (``xiaoming`` -> xiao + ming)."""
    syllables = PINYIN_SYLLABLES
    reachable = [True] + [False] * len(text)
    for end in range(1, len(text) + 1):
        reachable[end] = any(
            reachable[start] and text[start:end] in syllables
            for start in range(max(0, end - 6), end)
        )
    return reachable[-1]


@lru_cache(maxsize=100_000)
def split_pinyin_name(token: str) -> tuple[str, ...] | None:
    """A name written as one pinyin word split into surname and given name
    (``wangxiaoming`` -> ``("wang", "xiaoming")``), or ``None`` when it is not one."""
    if not token.isascii() or not token.isalpha() or len(token) < 5:
        return None
    surnames = _surname_syllables()
    for cut in range(min(len(token) - 1, 8), 0, -1):
        head, rest = token[:cut], token[cut:]
        if head in surnames and _is_syllables(rest):
            return head, rest
    return None
