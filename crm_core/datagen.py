"""Seeded, deterministic demo and test data for the CRM (pure pandas/numpy/Faker, no database).

``generate(n)`` returns a :class:`DemoData` with one DataFrame per table: teams, users, customers
(half Chinese, half English-speaking, with planted duplicates whose ground truth is the
``truth_cluster`` column) and their history (interactions, deals, orders, payments, contracts,
tickets, tasks, loyalty points). The same arguments always give identical frames.

Columns are drawn with numpy from small vocabularies (Faker's name lists with their frequencies,
pools built once) and joined with vectorised string operations; only the planted duplicates are
varied one by one. A million customers with history take about 30 s of CPU and 3 GB of memory.
Random streams come from ``numpy.random.SeedSequence(seed)``, one per part, so for instance the
customers do not change when ``history`` is switched off.

Conventions of the frames (see ``datasets/README.md``):

- ids are ``int64`` from 1, in creation order; nullable references are ``Int64``;
- text is pandas' ``str`` dtype, missing text is NA;
- timestamps are ``datetime64[us, UTC]``; calendar dates (birthday, expected_close, contract
  start and end) are ``date32[pyarrow]`` (``datetime.date`` / ``None`` on ``to_dict``);
- money is ``float64`` rounded to cents with a ``currency`` column (CNY, USD, GBP).

``python -m crm_core.datagen --customers 500 --seed 7 --out datasets/sample`` writes the CSVs.
"""

from __future__ import annotations

import argparse
import random
import time
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from functools import cache, lru_cache
from pathlib import Path
from string import Formatter

import numpy as np
import pandas as pd
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc
from faker import Faker
from faker.providers.person.en_GB import Provider as _GbNames
from faker.providers.person.en_US import Provider as _UsNames
from faker.providers.person.zh_CN import Provider as _CnNames
from pypinyin import Style, lazy_pinyin

__all__ = ["COLUMNS", "DemoData", "generate", "main", "write_sample"]

COLUMNS: dict[str, tuple[str, ...]] = {
    "teams": ("id", "name"),
    "users": ("id", "username", "display_name", "role", "team_id", "email", "locale"),
    "customers": (
        "id", "kind", "name", "company_ref", "company", "position", "industry", "size", "source",
        "phone", "phone2", "email", "country", "province", "city", "district", "street",
        "postcode", "birthday", "lifecycle_stage", "value_tier", "owner_id", "tags", "created_at",
        "truth_cluster",
    ),
    "interactions": ("id", "customer_id", "user_id", "kind", "subject", "body", "occurred_at"),
    "deals": (
        "id", "customer_id", "owner_id", "title", "stage", "status", "amount", "currency",
        "created_at", "expected_close", "closed_at", "lost_reason",
    ),
    "orders": (
        "id", "customer_id", "number", "ordered_at", "total", "currency", "status",
        "product_line", "channel",
    ),
    "payments": ("id", "order_id", "paid_at", "amount", "method"),
    "contracts": (
        "id", "customer_id", "number", "title", "start_date", "end_date", "value", "currency",
        "status",
    ),
    "tickets": (
        "id", "customer_id", "kind", "subject", "body", "status", "priority", "assignee_id",
        "created_at", "due_at", "resolved_at", "satisfaction",
    ),
    "tasks": ("id", "customer_id", "assignee_id", "title", "due_at", "done_at"),
    "loyalty": ("id", "customer_id", "points", "reason", "occurred_at"),
}  # fmt: skip
"""Column names of every frame, in order."""

_INT = "int64"
_NINT = "Int64"
_STR = "str"
_TS = "datetime64[us, UTC]"
_DATE = pd.ArrowDtype(pa.date32())
_FLOAT = "float64"

_DTYPES: dict[str, dict[str, object]] = {
    "teams": {"id": _INT, "name": _STR},
    "users": {
        "id": _INT, "username": _STR, "display_name": _STR, "role": _STR, "team_id": _NINT,
        "email": _STR, "locale": _STR,
    },
    "customers": {
        "id": _INT, "kind": _STR, "name": _STR, "company_ref": _NINT, "company": _STR,
        "position": _STR, "industry": _STR, "size": _STR, "source": _STR, "phone": _STR,
        "phone2": _STR, "email": _STR, "country": _STR, "province": _STR, "city": _STR,
        "district": _STR, "street": _STR, "postcode": _STR, "birthday": _DATE,
        "lifecycle_stage": _STR, "value_tier": _STR, "owner_id": _NINT, "tags": _STR,
        "created_at": _TS, "truth_cluster": _INT,
    },
    "interactions": {
        "id": _INT, "customer_id": _INT, "user_id": _INT, "kind": _STR, "subject": _STR,
        "body": _STR, "occurred_at": _TS,
    },
    "deals": {
        "id": _INT, "customer_id": _INT, "owner_id": _NINT, "title": _STR, "stage": _STR,
        "status": _STR, "amount": _FLOAT, "currency": _STR, "created_at": _TS,
        "expected_close": _DATE, "closed_at": _TS, "lost_reason": _STR,
    },
    "orders": {
        "id": _INT, "customer_id": _INT, "number": _STR, "ordered_at": _TS, "total": _FLOAT,
        "currency": _STR, "status": _STR, "product_line": _STR, "channel": _STR,
    },
    "payments": {
        "id": _INT, "order_id": _INT, "paid_at": _TS, "amount": _FLOAT, "method": _STR,
    },
    "contracts": {
        "id": _INT, "customer_id": _INT, "number": _STR, "title": _STR, "start_date": _DATE,
        "end_date": _DATE, "value": _FLOAT, "currency": _STR, "status": _STR,
    },
    "tickets": {
        "id": _INT, "customer_id": _INT, "kind": _STR, "subject": _STR, "body": _STR,
        "status": _STR, "priority": _STR, "assignee_id": _NINT, "created_at": _TS,
        "due_at": _TS, "resolved_at": _TS, "satisfaction": _NINT,
    },
    "tasks": {
        "id": _INT, "customer_id": _INT, "assignee_id": _NINT, "title": _STR, "due_at": _TS,
        "done_at": _TS,
    },
    "loyalty": {
        "id": _INT, "customer_id": _INT, "points": _INT, "reason": _STR, "occurred_at": _TS,
    },
}  # fmt: skip


@dataclass
class DemoData:
    """Demo tables as DataFrames; columns and dtypes as in ``COLUMNS`` and the module docstring."""

    teams: pd.DataFrame
    users: pd.DataFrame
    customers: pd.DataFrame
    interactions: pd.DataFrame
    deals: pd.DataFrame
    orders: pd.DataFrame
    payments: pd.DataFrame
    contracts: pd.DataFrame
    tickets: pd.DataFrame
    tasks: pd.DataFrame
    loyalty: pd.DataFrame

    def frames(self) -> dict[str, pd.DataFrame]:
        """The frames by table name, in an order that satisfies foreign keys when loaded."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


# --------------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------------

DAY = 86_400
_STAGES = ("lead", "prospect", "customer", "vip", "dormant", "churned")
_TIERS = ("A", "B", "C")
_SIZES = ("1-10", "11-50", "51-200", "201-1000", "1000+")
_SOURCES = ("website", "referral", "trade_show", "cold_call", "wechat", "social", "partner", "ads")
_SOURCE_P_CN = (0.18, 0.15, 0.12, 0.08, 0.25, 0.07, 0.07, 0.08)
_SOURCE_P_EN = (0.30, 0.17, 0.13, 0.08, 0.00, 0.14, 0.08, 0.10)
_TAGS = (
    "wechat", "key_account", "newsletter", "vip_event", "price_sensitive", "needs_followup",
    "invoice_required", "do_not_call", "partner_referral", "trade_show",
)  # fmt: skip

# (code, Chinese company word, English company word, web domain word)
_INDUSTRIES = (
    ("software", "软件", "Software", "soft"),
    ("it_services", "信息技术", "Technologies", "tech"),
    ("manufacturing", "机械制造", "Manufacturing", "mfg"),
    ("trading", "贸易", "Trading", "trade"),
    ("retail", "商贸", "Retail", "shop"),
    ("logistics", "物流", "Logistics", "logistics"),
    ("healthcare", "医疗器械", "Medical", "med"),
    ("education", "教育咨询", "Learning", "edu"),
    ("finance", "投资管理", "Capital", "capital"),
    ("construction", "建筑工程", "Construction", "build"),
    ("food", "食品", "Foods", "food"),
    ("media", "文化传媒", "Media", "media"),
    ("energy", "新能源", "Energy", "energy"),
    ("consulting", "企业管理咨询", "Consulting", "consult"),
    ("hospitality", "餐饮管理", "Hospitality", "catering"),
    ("ecommerce", "电子商务", "Commerce", "ec"),
)

# province, city, landline area code (no trunk 0), postcode prefix, weight, districts
_CN_PLACES = (
    ("北京市", "北京市", "10", "100", 8.0, ("朝阳区", "海淀区", "东城区", "西城区", "丰台区", "通州区")),
    ("上海市", "上海市", "21", "200", 8.0, ("浦东新区", "徐汇区", "静安区", "黄浦区", "闵行区", "长宁区")),
    ("天津市", "天津市", "22", "300", 2.5, ("和平区", "南开区", "河西区", "滨海新区")),
    ("重庆市", "重庆市", "23", "400", 2.5, ("渝中区", "江北区", "南岸区", "九龙坡区")),
    ("广东省", "广州市", "20", "510", 6.0, ("天河区", "越秀区", "海珠区", "番禺区", "白云区")),
    ("广东省", "深圳市", "755", "518", 6.0, ("南山区", "福田区", "宝安区", "龙岗区", "罗湖区")),
    ("广东省", "东莞市", "769", "523", 2.0, ("南城街道", "东城街道", "长安镇", "虎门镇")),
    ("广东省", "佛山市", "757", "528", 2.0, ("禅城区", "南海区", "顺德区")),
    ("浙江省", "杭州市", "571", "310", 5.0, ("西湖区", "上城区", "拱墅区", "滨江区", "余杭区")),
    ("浙江省", "宁波市", "574", "315", 2.0, ("海曙区", "鄞州区", "江北区")),
    ("浙江省", "温州市", "577", "325", 1.5, ("鹿城区", "瓯海区", "龙湾区")),
    ("江苏省", "南京市", "25", "210", 3.0, ("玄武区", "鼓楼区", "建邺区", "秦淮区")),
    ("江苏省", "苏州市", "512", "215", 3.0, ("姑苏区", "吴中区", "相城区", "虎丘区")),
    ("江苏省", "无锡市", "510", "214", 1.5, ("梁溪区", "滨湖区", "新吴区")),
    ("四川省", "成都市", "28", "610", 4.0, ("锦江区", "武侯区", "青羊区", "成华区", "金牛区")),
    ("湖北省", "武汉市", "27", "430", 3.0, ("武昌区", "江汉区", "洪山区", "江岸区")),
    ("山东省", "济南市", "531", "250", 2.0, ("历下区", "市中区", "槐荫区")),
    ("山东省", "青岛市", "532", "266", 2.0, ("市南区", "市北区", "崂山区", "黄岛区")),
    ("福建省", "福州市", "591", "350", 1.5, ("鼓楼区", "台江区", "仓山区")),
    ("福建省", "厦门市", "592", "361", 1.5, ("思明区", "湖里区", "集美区")),
    ("河南省", "郑州市", "371", "450", 2.0, ("金水区", "二七区", "中原区", "管城回族区")),
    ("湖南省", "长沙市", "731", "410", 2.0, ("岳麓区", "芙蓉区", "天心区", "开福区")),
    ("陕西省", "西安市", "29", "710", 2.0, ("雁塔区", "碑林区", "未央区", "新城区")),
    ("安徽省", "合肥市", "551", "230", 1.5, ("蜀山区", "包河区", "庐阳区")),
    ("辽宁省", "沈阳市", "24", "110", 1.5, ("和平区", "沈河区", "皇姑区")),
    ("辽宁省", "大连市", "411", "116", 1.0, ("中山区", "沙河口区", "甘井子区")),
    ("黑龙江省", "哈尔滨市", "451", "150", 1.0, ("南岗区", "道里区", "香坊区")),
    ("云南省", "昆明市", "871", "650", 1.0, ("五华区", "盘龙区", "官渡区")),
    ("河北省", "石家庄市", "311", "050", 1.0, ("长安区", "桥西区", "裕华区")),
    ("江西省", "南昌市", "791", "330", 1.0, ("东湖区", "西湖区", "红谷滩区")),
    ("广西壮族自治区", "南宁市", "771", "530", 1.0, ("青秀区", "兴宁区", "西乡塘区")),
)  # fmt: skip
_CN_SEVEN_DIGIT_AREAS = ("592", "771")  # cities whose local numbers still have 7 digits
# Provinces of the second Chinese sales team when there are three teams (the first is the rest).
_CN_SOUTH = ("广东省", "福建省", "广西壮族自治区", "湖南省", "云南省", "四川省", "重庆市", "江西省")

_CN_ROADS = (
    "人民路", "中山路", "解放路", "建设路", "和平路", "长江路", "黄河路", "文三路", "学院路",
    "南京路", "延安路", "新华路", "友谊路", "胜利路", "东风路", "朝阳路", "光明路", "幸福路",
    "青年路", "滨江大道", "世纪大道", "天府大道", "深南大道", "花园路", "体育路", "工业大道",
    "金融街", "创业路", "科技路", "湖滨路", "江南大道", "环城北路", "东三环中路", "建国路",
    "中关村大街", "高新路", "解放北路", "五一路", "北京路", "上海路", "振兴路", "华夏路",
    "长安街", "凤凰路", "民主路", "文化路", "丰收路", "迎宾大道", "新港路", "钱江路",
)  # fmt: skip
_CN_BUILDINGS = (
    "万达广场", "国贸中心", "世贸大厦", "金茂大厦", "时代广场", "银泰中心", "财富中心", "科技大厦",
    "创新园", "商务中心", "国际大厦", "华润大厦", "海天大厦", "环球中心", "软件园",
)  # fmt: skip
_CN_BRANDS = (
    "星辰", "华信", "博远", "恒通", "瑞达", "中科", "天宇", "金桥", "宏图", "鼎盛", "汇智", "云帆",
    "启明", "嘉禾", "远航", "锦程", "新天", "安泰", "诚信", "永华", "德利", "腾达", "兴业", "华创",
    "智联", "凯越", "盛世", "佳和", "美达", "众合", "长青", "明德", "海纳", "百川", "君安", "华美",
    "润丰", "泰和", "同创", "信达", "宏达", "精工", "卓越", "优品", "万通", "新元", "天成", "中润",
    "和泰", "九方", "海创", "凌云", "天益", "创汇", "思优", "盟新", "明腾", "良诺", "银嘉", "佳禾",
    "昊嘉", "维涛", "蓝海", "东方", "北辰", "金色", "博瑞", "聚源", "致远", "恒信", "华腾", "正泰",
    "瀚海", "鸿运", "祥和", "中泰", "易达", "通达", "锐思", "智达", "光华", "朗润", "晨曦", "青云",
)  # fmt: skip
_CN_SUFFIXES = (("有限公司", 0.58), ("股份有限公司", 0.14), ("有限责任公司", 0.14),
                ("集团有限公司", 0.08), ("集团", 0.06))  # fmt: skip
_CN_POSITIONS = (
    "总经理", "副总经理", "销售经理", "采购经理", "采购专员", "财务经理", "财务总监", "人事经理",
    "行政主管", "技术总监", "IT经理", "项目经理", "市场经理", "运营总监", "董事长", "法务专员",
    "客服主管", "店长", "工程师", "总经理助理",
)  # fmt: skip
# first characters of two-character given names (second characters come from Faker's list)
_CN_GIVEN_FIRST = tuple(
    "子志建晓海文俊国嘉雨思梓欣浩宇佳明春小丽家天一永美雅语诗若可昊博泽晨紫梦金玉宏立振德世兴"
    "秀红亚鹏新少嘉婉"
)
_CN_SURNAME_PINYIN = {
    "曾": "zeng", "单": "shan", "解": "xie", "仇": "qiu", "区": "ou", "查": "zha", "朴": "piao",
    "乐": "yue", "覃": "qin", "翟": "zhai", "缪": "miao", "褚": "chu", "沈": "shen", "任": "ren",
}  # fmt: skip
_CN_HOMOPHONES = {
    "伟": "玮炜", "丽": "莉俐", "静": "婧晶", "敏": "闽", "娜": "纳", "军": "君钧", "杰": "洁",
    "涛": "滔韬", "明": "铭鸣", "超": "朝", "华": "骅桦", "芳": "方", "磊": "蕾", "勇": "永咏",
    "艳": "燕", "强": "蔷", "平": "萍", "刚": "钢", "辉": "晖", "鹏": "朋", "斌": "彬", "宇": "雨羽",
    "浩": "皓昊", "凯": "恺", "婷": "亭", "倩": "茜", "欣": "馨", "怡": "宜", "佳": "嘉家", "林": "琳",
    "波": "博", "健": "建", "俊": "峻骏", "飞": "菲", "鑫": "新", "帆": "凡", "玲": "琳", "红": "虹",
    "霞": "夏", "梅": "玫", "英": "瑛", "娟": "鹃", "秀": "绣", "晓": "小", "文": "雯", "志": "智",
}  # fmt: skip

_EN_SUFFIXES = {
    "US": (("Inc.", 0.35), ("LLC", 0.35), ("Corp.", 0.1), ("Co.", 0.1), ("Inc", 0.1)),
    "GB": (("Ltd", 0.55), ("Limited", 0.25), ("PLC", 0.05), ("LLP", 0.05), ("Ltd.", 0.1)),
    "AU": (("Pty Ltd", 0.8), ("Pty. Ltd.", 0.2)),
    "CA": (("Inc.", 0.5), ("Ltd.", 0.3), ("Corp.", 0.2)),
    "SG": (("Pte. Ltd.", 0.7), ("Pte Ltd", 0.3)),
}
_EN_BRANDS = (
    "Northwind", "Blue Harbor", "Summit", "Redwood", "Silverline", "Evergreen", "Pinnacle",
    "Bright Path", "Ironbridge", "Oakridge", "Clearwater", "Keystone", "Highland", "Riverside",
    "Sterling", "Granite", "Horizon", "Beacon", "Crescent", "Lighthouse", "Maple Leaf", "Cedar",
    "Harbor Point", "Atlas", "Vanguard", "Meridian", "Westbrook", "Fairview", "Silver Birch",
    "Blue Ridge", "Stonegate", "Northgate", "Kingfisher", "Falcon", "Greenfield", "Rosewood",
    "Sunrise", "Pacific", "Lakeside", "Hillcrest", "Bluebell", "Copperleaf", "Eastwind",
    "Foxglove", "Ashford", "Brightwater", "Cobalt", "Driftwood", "Elmstead", "Juniper",
)  # fmt: skip
_EN_POSITIONS = (
    "CEO", "Managing Director", "Sales Manager", "Purchasing Manager", "Procurement Specialist",
    "Finance Director", "CFO", "HR Manager", "Office Manager", "IT Manager", "CTO",
    "Project Manager", "Marketing Manager", "Operations Director", "Founder", "Buyer",
    "Account Manager", "Customer Success Lead", "Engineer", "Executive Assistant",
)  # fmt: skip
_EN_STREET_SUFFIXES = (
    ("Street", 0.3), ("Road", 0.2), ("Avenue", 0.15), ("Lane", 0.08), ("Drive", 0.08),
    ("Way", 0.05), ("Close", 0.03), ("Court", 0.04), ("Place", 0.04), ("Boulevard", 0.03),
)  # fmt: skip
_EN_STREET_WORDS = (
    "Oak", "Maple", "Park", "Church", "High", "Station", "Mill", "Victoria", "King", "Queen",
    "Main", "Elm", "Cedar", "Lake", "Hill", "Washington", "Market", "Bridge", "George", "Pine",
    "Chestnut", "Willow", "Spring", "River", "Union", "Franklin", "Albert", "York", "Green",
)  # fmt: skip
_ABBREV = {
    "Street": "St", "Road": "Rd", "Avenue": "Ave", "Lane": "Ln", "Drive": "Dr", "Court": "Ct",
    "Place": "Pl", "Boulevard": "Blvd", "Close": "Cl",
}  # fmt: skip
_NICKNAMES = {
    "William": ("Bill", "Will", "Billy"), "Robert": ("Bob", "Rob", "Bobby"),
    "Elizabeth": ("Liz", "Beth", "Lizzie", "Betty"), "Richard": ("Rick", "Dick", "Richie"),
    "James": ("Jim", "Jimmy", "Jamie"), "John": ("Jack", "Johnny"), "Michael": ("Mike", "Mick"),
    "Thomas": ("Tom", "Tommy"), "Joseph": ("Joe", "Joey"), "Charles": ("Charlie", "Chuck"),
    "Christopher": ("Chris",), "Daniel": ("Dan", "Danny"), "Matthew": ("Matt",),
    "Anthony": ("Tony",), "Jennifer": ("Jen", "Jenny"), "Margaret": ("Maggie", "Peggy", "Meg"),
    "Katherine": ("Kate", "Kathy", "Katie"), "Catherine": ("Cathy", "Kate"), "Susan": ("Sue",),
    "Patricia": ("Pat", "Patty", "Trish"), "Deborah": ("Debbie", "Deb"), "Rebecca": ("Becky",),
    "Samantha": ("Sam",), "Alexander": ("Alex",), "Benjamin": ("Ben",), "Nicholas": ("Nick",),
    "Jonathan": ("Jon",), "Edward": ("Ed", "Ted", "Eddie"), "Andrew": ("Andy", "Drew"),
    "Steven": ("Steve",), "Stephen": ("Steve",), "Timothy": ("Tim",), "Kenneth": ("Ken",),
    "Ronald": ("Ron",), "Donald": ("Don",), "Gregory": ("Greg",), "Jessica": ("Jess",),
    "Victoria": ("Vicky", "Tori"), "Christine": ("Chris", "Tina"), "Kimberly": ("Kim",),
    "Jacqueline": ("Jackie",), "Abigail": ("Abby",), "Zachary": ("Zach",), "Joshua": ("Josh",),
    "Nathan": ("Nate",), "Samuel": ("Sam",), "Peter": ("Pete",), "Raymond": ("Ray",),
    "Lawrence": ("Larry",), "Frederick": ("Fred",), "Henry": ("Harry", "Hank"),
    "Jeffrey": ("Jeff",), "Douglas": ("Doug",), "Amanda": ("Mandy",), "Cynthia": ("Cindy",),
    "Judith": ("Judy",), "Pamela": ("Pam",), "Sandra": ("Sandy",), "Melissa": ("Mel",),
    "Stephanie": ("Steph",), "Jacob": ("Jake",), "Philip": ("Phil",), "Dorothy": ("Dot",),
    "Gerald": ("Gerry",), "Theodore": ("Ted", "Theo"), "Eleanor": ("Ellie",), "David": ("Dave",),
    "Matilda": ("Tilly",), "Oliver": ("Ollie",), "Isabella": ("Bella",), "Harold": ("Harry",),
}  # fmt: skip

# country, province/state, city, landline heads (national digits), UTC offset, weight,
# postcode rule, districts
_EN_PLACES = (
    ("US", "CA", "San Francisco", ("415", "628"), -8, 3.0, "941", ()),
    ("US", "CA", "Los Angeles", ("213", "310", "323"), -8, 3.0, "900", ()),
    ("US", "CA", "San Diego", ("619", "858"), -8, 1.5, "921", ()),
    ("US", "NY", "New York", ("212", "646", "718"), -5, 4.0, "100", ("Manhattan", "Brooklyn", "Queens")),
    ("US", "IL", "Chicago", ("312", "773"), -6, 2.5, "606", ()),
    ("US", "TX", "Houston", ("713", "281"), -6, 2.0, "770", ()),
    ("US", "TX", "Austin", ("512", "737"), -6, 1.5, "787", ()),
    ("US", "TX", "Dallas", ("214", "972"), -6, 1.5, "752", ()),
    ("US", "WA", "Seattle", ("206", "425"), -8, 2.0, "981", ()),
    ("US", "MA", "Boston", ("617", "857"), -5, 2.0, "021", ()),
    ("US", "GA", "Atlanta", ("404", "678"), -5, 1.5, "303", ()),
    ("US", "FL", "Miami", ("305", "786"), -5, 1.5, "331", ()),
    ("US", "CO", "Denver", ("303", "720"), -7, 1.0, "802", ()),
    ("US", "PA", "Philadelphia", ("215", "267"), -5, 1.5, "191", ()),
    ("GB", "Greater London", "London", ("20",), 0, 6.0, "SW1A EC1A W1D N1 SE1 E14 NW3 WC2N",
     ("Westminster", "Camden", "Islington", "Southwark", "Hackney")),
    ("GB", "Greater Manchester", "Manchester", ("161",), 0, 2.0, "M1 M2 M4 M15 M20", ()),
    ("GB", "West Midlands", "Birmingham", ("121",), 0, 1.5, "B1 B2 B5 B15", ()),
    ("GB", "West Yorkshire", "Leeds", ("113",), 0, 1.0, "LS1 LS2 LS6", ()),
    ("GB", "City of Edinburgh", "Edinburgh", ("131",), 0, 1.0, "EH1 EH2 EH3", ()),
    ("GB", "Glasgow City", "Glasgow", ("141",), 0, 1.0, "G1 G2 G12", ()),
    ("GB", "Bristol", "Bristol", ("117",), 0, 0.8, "BS1 BS8", ()),
    ("AU", "NSW", "Sydney", ("29", "28"), 10, 2.0, "2000-2234", ()),
    ("AU", "VIC", "Melbourne", ("39", "38"), 10, 1.8, "3000-3207", ()),
    ("AU", "QLD", "Brisbane", ("73",), 10, 0.8, "4000-4179", ()),
    ("AU", "WA", "Perth", ("89", "86"), 8, 0.6, "6000-6199", ()),
    ("CA", "ON", "Toronto", ("416", "647"), -5, 2.0, "M5V M5J M4W M6G", ()),
    ("CA", "BC", "Vancouver", ("604", "778"), -8, 1.2, "V6B V6E V5K", ()),
    ("CA", "QC", "Montreal", ("514", "438"), -5, 1.0, "H2X H3B H2Y", ()),
    ("CA", "AB", "Calgary", ("403", "587"), -7, 0.6, "T2P T2R", ()),
    ("SG", None, "Singapore", ("6",), 8, 3.0, "sg", ("Downtown Core", "Orchard", "Tampines", "Jurong East")),
)  # fmt: skip
_EN_COUNTRY_P = {"US": 0.45, "GB": 0.25, "AU": 0.1, "CA": 0.1, "SG": 0.1}
_MOBILE_HEADS = {
    "CN": tuple(str(x) for x in (*range(130, 140), 150, 151, 152, 153, 155, 156, 157, 158, 159,
                                 166, 173, 175, 176, 177, 178, *range(180, 190), 191, 198, 199)),
    "GB": ("74", "75", "77", "78", "79"),
    "AU": ("40", "41", "42", "43", "44", "45", "46", "47", "48"),
    "SG": ("8", "9"),
}  # fmt: skip

_FREE_MAIL = {
    "CN": (("qq.com", 0.4), ("163.com", 0.22), ("126.com", 0.1), ("sina.com", 0.07),
           ("foxmail.com", 0.06), ("139.com", 0.05), ("aliyun.com", 0.04), ("sohu.com", 0.06)),
    "US": (("gmail.com", 0.5), ("yahoo.com", 0.15), ("outlook.com", 0.15), ("hotmail.com", 0.1),
           ("icloud.com", 0.07), ("aol.com", 0.03)),
    "GB": (("gmail.com", 0.4), ("outlook.com", 0.15), ("hotmail.co.uk", 0.15),
           ("btinternet.com", 0.1), ("yahoo.co.uk", 0.1), ("icloud.com", 0.1)),
    "AU": (("gmail.com", 0.5), ("bigpond.com", 0.2), ("outlook.com", 0.15), ("hotmail.com", 0.15)),
    "CA": (("gmail.com", 0.5), ("outlook.com", 0.2), ("hotmail.com", 0.15), ("yahoo.ca", 0.15)),
    "SG": (("gmail.com", 0.55), ("outlook.com", 0.2), ("yahoo.com.sg", 0.15),
           ("singnet.com.sg", 0.1)),
}  # fmt: skip
_WORK_TLD = {"CN": (".com", ".cn", ".com.cn", ".net"), "US": (".com", ".com", ".net", ".io"),
             "GB": (".co.uk", ".co.uk", ".com"), "AU": (".com.au", ".com.au", ".com"),
             "CA": (".ca", ".com"), "SG": (".com.sg", ".sg", ".com")}  # fmt: skip
_STAFF_DOMAIN = "democrm.example.com"

# text pools: kind -> (subjects, bodies) per language
_INTERACTION_TEXT = {
    "zh": {
        "call": (
            ("电话回访", "电话沟通报价", "电话跟进需求", "确认发货时间", "续约电话沟通"),
            (
                "客户对报价基本认可，需内部审批。",
                "客户询问交期，已答复两周内发货。",
                "客户暂无采购计划，下月再跟进。",
                "已确认收货，客户对产品满意。",
                "客户希望增加培训服务，待出方案。",
            ),
        ),
        "email": (
            ("发送产品报价单", "发送合同草案", "会议纪要", "新品介绍", "发票寄送通知"),
            (
                "附件为最新报价，请查收。",
                "合同草案已发送，请法务审核。",
                "会议纪要已整理，请确认。",
                "向客户介绍了新品功能与价格。",
                "增值税发票已寄出，快递单号已告知。",
            ),
        ),
        "meeting": (
            ("需求调研会议", "方案演示会", "季度业务回顾", "商务谈判会议"),
            (
                "与采购和技术负责人讨论需求，下周提交方案。",
                "演示了系统方案，客户提出三点修改意见。",
                "回顾了本季度订单与服务情况。",
                "就价格和付款方式进行了谈判。",
            ),
        ),
        "visit": (
            ("上门拜访", "现场安装调试", "客户来访参观", "年度拜访"),
            (
                "拜访客户总经理，了解明年预算。",
                "完成现场安装调试，客户签字验收。",
                "客户参观公司展厅，对新产品感兴趣。",
                "年度拜访，客户计划扩大采购。",
            ),
        ),
        "chat": (
            ("微信咨询产品价格", "微信沟通交期", "微信发送资料", "在线咨询售后问题"),
            (
                "客户通过微信询价，已发送价目表。",
                "客户催问交期，已协调仓库。",
                "已通过微信发送产品手册。",
                "客户反馈使用问题，已转技术支持。",
            ),
        ),
        "note": (
            ("客户背景备注", "决策链信息", "竞争对手情况", "付款习惯备注"),
            (
                "客户为本地龙头企业，重视服务响应速度。",
                "采购需总经理审批，财务负责付款。",
                "客户同时在比较两家竞争对手的报价。",
                "客户习惯月结，付款一般在30天内。",
            ),
        ),
    },
    "en": {
        "call": (
            (
                "Follow-up call",
                "Pricing call",
                "Discovery call",
                "Delivery date check",
                "Renewal call",
            ),
            (
                "Customer broadly accepts the quote; needs internal approval.",
                "Asked about lead times; confirmed shipping within two weeks.",
                "No purchase planned this quarter; follow up next month.",
                "Goods received, customer is happy with the product.",
                "Customer would like training added; proposal to follow.",
            ),
        ),
        "email": (
            ("Quote sent", "Draft contract", "Meeting notes", "New product intro", "Invoice sent"),
            (
                "Sent the latest quote as a PDF attachment.",
                "Draft contract sent for legal review.",
                "Shared notes from our meeting.",
                "Introduced the new product line and pricing.",
                "Invoice emailed; payment due in 30 days.",
            ),
        ),
        "meeting": (
            (
                "Requirements workshop",
                "Product demo",
                "Quarterly business review",
                "Commercial negotiation",
            ),
            (
                "Discussed requirements with procurement and IT; proposal next week.",
                "Demoed the solution; three change requests noted.",
                "Reviewed orders and service levels for the quarter.",
                "Negotiated price and payment terms.",
            ),
        ),
        "visit": (
            ("On-site visit", "Installation visit", "Customer visited our office", "Annual visit"),
            (
                "Met the managing director to discuss next year's budget.",
                "Completed installation; customer signed off.",
                "Customer toured the showroom and liked the new range.",
                "Annual visit; customer plans to expand purchasing.",
            ),
        ),
        "chat": (
            (
                "Chat: pricing question",
                "Chat: delivery status",
                "Chat: documents",
                "Chat: support question",
            ),
            (
                "Customer asked for prices in chat; sent the price list.",
                "Customer chased delivery; checked with the warehouse.",
                "Shared the product brochure in chat.",
                "Customer reported an issue; passed to support.",
            ),
        ),
        "note": (
            ("Account background", "Decision makers", "Competition", "Payment habits"),
            (
                "Local market leader; values fast service.",
                "Purchases need MD approval; finance pays.",
                "Customer is comparing quotes from two competitors.",
                "Pays monthly, usually within 30 days.",
            ),
        ),
    },
}
_TICKET_TEXT = {
    "zh": {
        "feedback": (
            ("产品使用建议", "对服务的表扬", "功能改进建议", "包装反馈"),
            (
                "希望报表可以导出Excel。",
                "安装人员服务很专业，特此表扬。",
                "建议增加手机端功能。",
                "包装可以更环保一些。",
            ),
        ),
        "complaint": (
            ("发货延迟", "产品质量问题", "发票开具错误", "客服响应慢", "收费有误"),
            (
                "订单超过约定时间仍未发货。",
                "收到的产品有破损，要求更换。",
                "发票抬头错误，需要重开。",
                "多次联系客服未得到答复。",
                "账单金额与合同不符。",
            ),
        ),
        "request": (
            ("申请开具发票", "修改收货地址", "申请退货", "预约上门服务", "账号权限申请"),
            (
                "请开具增值税专用发票。",
                "请将收货地址改为公司新地址。",
                "产品不符合需求，申请七天无理由退货。",
                "希望下周安排工程师上门维护。",
                "请为新同事开通系统账号。",
            ),
        ),
    },
    "en": {
        "feedback": (
            ("Product suggestion", "Praise for the team", "Feature idea", "Packaging feedback"),
            (
                "Would love to export reports to Excel.",
                "The installer was very professional, thank you.",
                "Please add a mobile app.",
                "Packaging could be more eco-friendly.",
            ),
        ),
        "complaint": (
            ("Late delivery", "Damaged item", "Wrong invoice", "Slow support", "Billing error"),
            (
                "The order is past the promised delivery date.",
                "The item arrived damaged; please replace it.",
                "The invoice has the wrong company name.",
                "Nobody answered my last three emails.",
                "The bill does not match the contract.",
            ),
        ),
        "request": (
            (
                "Invoice copy",
                "Change delivery address",
                "Return request",
                "Book a service visit",
                "New user account",
            ),
            (
                "Please send a copy of the last invoice.",
                "Please deliver to our new office address.",
                "The product does not fit our needs; we would like to return it.",
                "Please book an engineer for next week.",
                "Please create an account for a new colleague.",
            ),
        ),
    },
}
_TASK_TITLES = {
    "zh": ("回访客户", "发送报价", "跟进合同签署", "安排产品演示", "催收货款", "准备续约方案",
           "确认发货", "节日问候", "更新客户资料", "邀请参加展会"),
    "en": ("Follow-up call", "Send quote", "Chase contract signature", "Schedule demo",
           "Chase payment", "Prepare renewal offer", "Confirm delivery", "Send season's greetings",
           "Update contact details", "Invite to trade show"),
}  # fmt: skip
_PRODUCT_LINES = ("software", "hardware", "services", "training", "support_plan", "consumables")
_PRODUCT_P = (0.25, 0.2, 0.2, 0.1, 0.15, 0.1)
_DEAL_TITLES = {
    "zh": ("软件采购项目", "硬件升级项目", "实施服务项目", "员工培训项目", "年度维保续约", "耗材年度采购"),
    "en": ("Software licences", "Hardware refresh", "Implementation services", "Staff training",
           "Support plan renewal", "Consumables supply"),
}  # fmt: skip
_CONTRACT_TITLES = {
    "zh": ("年度服务合同", "软件许可协议", "硬件采购合同", "维保服务合同", "框架合作协议"),
    "en": ("Annual service agreement", "Software licence agreement", "Hardware purchase contract",
           "Maintenance agreement", "Master services agreement"),
}  # fmt: skip
_CHANNELS = ("online", "direct_sales", "partner", "retail", "phone", "marketplace")
_CHANNEL_P = (0.35, 0.25, 0.12, 0.1, 0.08, 0.1)
_METHODS = {"zh": (("alipay", 0.35), ("wechat_pay", 0.3), ("bank_transfer", 0.3), ("cash", 0.05)),
            "en": (("card", 0.5), ("bank_transfer", 0.3), ("paypal", 0.15), ("cash", 0.05))}  # fmt: skip
_DEAL_STAGES = ("new", "qualified", "proposal", "negotiation", "won", "lost")
_ORDER_STATUSES = ("pending", "paid", "shipped", "completed", "cancelled", "refunded")
_LOST_REASONS = ("price", "competitor", "no_budget", "timing", "no_response", "requirements")
_CURRENCIES = ("CNY", "USD", "GBP")
_DIGITS = np.array([str(i) for i in range(10)], dtype=object)
_TWO_DIGITS = np.array([f"{i:02d}" for i in range(100)], dtype=object)


def _initial(names: np.ndarray) -> np.ndarray:
    return np.array([x[:1] for x in names], dtype=object)


# e-mail local parts from (first, last, two-digit birth year, digits): Chinese forms (pinyin,
# family name first) are 0-7, English forms 8-15
_LOCAL_PARTS: tuple[Callable[..., np.ndarray], ...] = (
    lambda f, s, y, d: s + f,
    lambda f, s, y, d: s + "." + f,
    lambda f, s, y, d: s + f + y,
    lambda f, s, y, d: f + "." + s,
    lambda f, s, y, d: s + f + d,
    lambda f, s, y, d: s + "_" + f,
    lambda f, s, y, d: _initial(s) + f + d,
    lambda f, s, y, d: f + s,
    lambda f, s, y, d: f + "." + s,
    lambda f, s, y, d: _initial(f) + s,
    lambda f, s, y, d: f + _initial(s),
    lambda f, s, y, d: f + "_" + s,
    lambda f, s, y, d: f + s + d,
    lambda f, s, y, d: f + "." + s + y,
    lambda f, s, y, d: s + "." + f,
    lambda f, s, y, d: f + "." + s + d,
)
_AMOUNT_MEDIAN = np.array([2000.0, 320.0, 260.0])  # per order, by currency
_TIER_FACTOR = np.array([3.0, 1.0, 0.45])


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def _keep(where: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` where ``where`` holds, ``None`` elsewhere (object array)."""
    out = np.full(len(where), None, dtype=object)
    out[where] = np.asarray(values, dtype=object)[where]
    return out


def _choice(rng: np.random.Generator, n: int, weights: Sequence[float] | np.ndarray) -> np.ndarray:
    """Indices drawn with the given (unnormalised) weights."""
    p = np.asarray(weights, dtype=float)
    return rng.choice(len(p), size=n, p=p / p.sum())


def _pick(rng: np.random.Generator, options: Sequence[tuple[str, float]], n: int) -> np.ndarray:
    values = np.array([o for o, _ in options], dtype=object)
    return values[_choice(rng, n, [w for _, w in options])]


def _uniform_time(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    span = np.maximum(hi - lo, 1)
    return lo + (rng.random(len(lo)) * span).astype(np.int64)


def _office_hours(
    rng: np.random.Generator, t: np.ndarray, tz: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> np.ndarray:
    """Move instants into 08:30–18:30 local time on a weekday when that stays within [lo, hi)."""
    local = t + tz * 3600
    day = local // DAY
    weekday = (day + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday
    day = day - np.where(weekday >= 5, weekday - 4, 0)
    moved = day * DAY + 30_600 + (rng.random(len(t)) * 36_000).astype(np.int64) - tz * 3600
    return np.where((moved >= lo) & (moved < hi), moved, t)


def _ts(seconds: np.ndarray, valid: np.ndarray | None = None) -> pd.arrays.DatetimeArray:
    values = seconds.astype("datetime64[s]").astype("datetime64[us]")
    if valid is not None:
        values[~valid] = np.datetime64("NaT")
    return pd.array(values, dtype="datetime64[us]").tz_localize("UTC")


def _dates(days: np.ndarray, valid: np.ndarray | None = None) -> pd.arrays.ArrowExtensionArray:
    mask = None if valid is None else ~valid
    return pd.arrays.ArrowExtensionArray(
        pa.array(days.astype(np.int32), mask=mask, type=pa.int32()).cast(pa.date32())
    )


def _nullable(ids: np.ndarray) -> pd.arrays.IntegerArray:
    """Ids where 0 means missing, as a nullable integer array."""
    return pd.arrays.IntegerArray(ids.astype(np.int64), ids == 0)


def _text(values: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """An object array of ``str``/``None`` as pandas' ``str`` dtype (Arrow-backed)."""
    return pd.array(pa.array(values, type=pa.string(), from_pandas=True), dtype=_STR)


def _pooled(
    pool: Sequence[str], index: np.ndarray, valid: np.ndarray | None = None
) -> pd.api.extensions.ExtensionArray:
    """``pool[index]`` as ``str`` dtype, built by Arrow without Python objects."""
    mask = None if valid is None else ~valid
    taken = pa.array(list(pool), type=pa.string()).take(pa.array(index, mask=mask))
    return pd.array(taken, dtype=_STR)


def _year(seconds: np.ndarray) -> np.ndarray:
    """Calendar year (UTC) of epoch seconds."""
    return seconds.astype("datetime64[s]").astype("datetime64[Y]").astype(np.int64) + 1970


def _numbered(
    prefix: str | np.ndarray, year: np.ndarray, ids: np.ndarray, width: int
) -> pd.api.extensions.ExtensionArray:
    """Document numbers such as ``SO-2025-0001234`` (prefix, year, zero-padded id)."""
    text = np.dtypes.StringDType()
    head = np.strings.add(np.asarray(prefix).astype(text), year.astype(text))
    number = np.strings.add(np.strings.add(head, "-"), np.strings.zfill(ids.astype(text), width))
    return pd.array(pa.array(number.astype(object), type=pa.string()), dtype=_STR)


def _frame(name: str, data: dict[str, object]) -> pd.DataFrame:
    columns = {}
    for column in COLUMNS[name]:
        value = data[column]
        if isinstance(value, np.ndarray) and value.dtype == object:
            value = _text(value)
        columns[column] = value
    return pd.DataFrame(columns).astype(_DTYPES[name])


def _empty(name: str) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=d) for c, d in _DTYPES[name].items()})


def _money(x: np.ndarray) -> np.ndarray:
    return np.round(x, 2)


def _typo(rnd: random.Random, text: str) -> str:
    """One keyboard slip: insert, delete, substitute or transpose a letter (never the first)."""
    letters = [i for i, ch in enumerate(text) if ch.isalpha() and i > 0]
    if not letters:
        return text + text[-1:]
    i = rnd.choice(letters)
    op = rnd.randrange(4)
    ch = rnd.choice("abcdefghijklmnopqrstuvwxyz")
    if text[i].isupper():
        ch = ch.upper()
    if op == 0:
        return text[:i] + ch + text[i:]
    if op == 1 and len(text) > 3:
        return text[:i] + text[i + 1 :]
    if op == 3 and i + 1 < len(text) and text[i + 1].isalpha() and text[i + 1] != text[i]:
        return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    if ch.lower() == text[i].lower():
        ch = "e" if text[i].lower() != "e" else "a"
    return text[:i] + ch + text[i + 1 :]


@lru_cache(maxsize=1)
def _s2t_table() -> dict[int, str]:
    """Simplified -> traditional characters (first variant) from OpenCC's dictionary."""
    from importlib.resources import files

    text = (files("opencc") / "dictionary" / "STCharacters.txt").read_text(encoding="utf-8")
    table: dict[int, str] = {}
    for line in text.splitlines():
        simplified, _, traditional = line.partition("\t")
        if len(simplified) == 1 and traditional:
            table[ord(simplified)] = traditional.split()[0]
    return table


def _traditional(text: str) -> str:
    """Traditional-character form of a simplified Chinese text (character by character)."""
    return text.translate(_s2t_table())


def _ascii_key(names: np.ndarray) -> np.ndarray:
    """Lower-case letters and digits only (for e-mail local parts)."""
    series = pd.Series(names, dtype="str").str.lower()
    return series.str.replace(r"[^a-z0-9]", "", regex=True).to_numpy(dtype=object)


def _pinyin(text: str, *, surname: bool = False) -> list[str]:
    if surname and text in _CN_SURNAME_PINYIN:
        return [_CN_SURNAME_PINYIN[text]]
    return [s for s in lazy_pinyin(text, style=Style.NORMAL) if s.strip()]


# --------------------------------------------------------------------------------------------
# Phones
# --------------------------------------------------------------------------------------------

# (country, national digits) -> [(template, weight)]; groups are filled by _phone_groups
_PHONE_STYLES: dict[str, tuple[tuple[str, float], ...]] = {
    "CN_mobile": (("{n}", 0.42), ("{0} {1} {2}", 0.16), ("{0}-{1}-{2}", 0.1),
                  ("+86 {0}-{1}-{2}", 0.1), ("+86 {n}", 0.08), ("+86{n}", 0.05),
                  ("0086 {0} {1} {2}", 0.03), ("(+86) {0} {1} {2}", 0.03),
                  ("+86-{0}-{1}-{2}", 0.03)),
    "CN_land": (("0{0}-{1}", 0.45), ("(0{0}) {1}", 0.15), ("0{0} {1}", 0.15),
                ("+86 {0} {1}", 0.15), ("+86-{0}-{1}", 0.1)),
    "NANP": (("+1 ({0}) {1}-{2}", 0.35), ("+1 {0}-{1}-{2}", 0.25), ("+1 {0} {1} {2}", 0.2),
             ("+1{n}", 0.1), ("+1 {0}.{1}.{2}", 0.1)),
    "GB_land": (("+44 {0} {1} {2}", 0.5), ("+44 (0){0} {1} {2}", 0.3), ("+44{n}", 0.1),
                ("0044 {0} {1} {2}", 0.1)),
    "GB_mobile": (("+44 {0} {1}{2}", 0.45), ("+44 (0){0} {1} {2}", 0.2), ("+44{n}", 0.15),
                  ("+44 {0} {1} {2}", 0.2)),
    "AU_land": (("+61 {0} {1} {2}", 0.6), ("+61 (0){0} {1} {2}", 0.3), ("+61{n}", 0.1)),
    "AU_mobile": (("+61 {0} {1} {2}", 0.6), ("+61 (0){0} {1} {2}", 0.2), ("+61{n}", 0.2)),
    "SG": (("+65 {0} {1}", 0.6), ("+65{n}", 0.2), ("(+65) {0} {1}", 0.1), ("+65-{0}-{1}", 0.1)),
}  # fmt: skip
# Phone numbers are kept as national significant numbers (int64, 0 = none) and written out at
# the end in one of the styles of their "shape" (country, mobile or landline, area code length).
# shape -> style family and the slices that cut the digits into groups {0}, {1}, {2}
_SHAPES: dict[str, tuple[str, tuple[tuple[int, int | None], ...]]] = {
    "CN_mobile": ("CN_mobile", ((0, 3), (3, 7), (7, None))),
    "CN_land2": ("CN_land", ((0, 2), (2, None))),
    "CN_land3": ("CN_land", ((0, 3), (3, None))),
    "NANP": ("NANP", ((0, 3), (3, 6), (6, None))),
    "GB_land2": ("GB_land", ((0, 2), (2, 6), (6, None))),
    "GB_land3": ("GB_land", ((0, 3), (3, 6), (6, None))),
    "GB_mobile": ("GB_mobile", ((0, 4), (4, 7), (7, None))),
    "AU_land": ("AU_land", ((0, 1), (1, 5), (5, None))),
    "AU_mobile": ("AU_mobile", ((0, 3), (3, 6), (6, None))),
    "SG": ("SG", ((0, 4), (4, None))),
}
_NANP = ("US", "CA")
_COUNTRY_CODE = {"CN": 86, "US": 1, "CA": 1, "GB": 44, "AU": 61, "SG": 65}


def _shape(country: str, digits: int, lead: int) -> str:
    """Shape of a number from its country, digit count and leading digit."""
    if country == "CN":
        if digits == 11 and lead == 1:
            return "CN_mobile"
        return "CN_land2" if lead in (1, 2) else "CN_land3"
    if country in _NANP:
        return "NANP"
    if country == "GB":
        return "GB_mobile" if lead == 7 else "GB_land2" if lead == 2 else "GB_land3"
    if country == "AU":
        return "AU_mobile" if lead == 4 else "AU_land"
    return "SG"


def _shape_of(country: str, nsn: int) -> str:
    text = str(nsn)
    return _shape(country, len(text), int(text[0]))


@cache
def _style_thresholds(family: str) -> tuple[float, ...]:
    weights = np.cumsum([w for _, w in _PHONE_STYLES[family]])
    return tuple((weights / weights[-1]).tolist())


def _style_index(shape: str, draw: int) -> int:
    """Index of the style that a draw in 0-999 picks, following the style weights."""
    family = _SHAPES[shape][0]
    style = bisect_right(_style_thresholds(family), draw / 1000)
    return min(style, len(_PHONE_STYLES[family]) - 1)


def _restyle(rnd: random.Random, country: str, nsn: int, draw: int) -> int:
    """A style draw (0-999) that writes ``nsn`` in a different style than ``draw`` does."""
    shape = _shape_of(country, nsn)
    thresholds = _style_thresholds(_SHAPES[shape][0])
    current = _style_index(shape, draw)
    others = [i for i in range(len(thresholds)) if i != current]
    if not others:
        return draw
    new = rnd.choice(others)
    low = thresholds[new - 1] if new else 0.0
    return min(int(low * 1000) + 1, 999) if new else 0


def _render_phones(country: np.ndarray, nsn: np.ndarray, draw: np.ndarray) -> np.ndarray:
    """Numbers written the way people write them (object array, ``None`` where no number)."""
    out = np.full(len(nsn), None, dtype=object)
    rows = np.flatnonzero(nsn > 0)
    if not len(rows):
        return out
    number = nsn[rows]
    digits = np.ones(len(rows), dtype=np.int64)
    for k in range(1, 15):
        digits += number >= 10**k
    lead = number // 10 ** (digits - 1)
    countries = sorted(_COUNTRY_CODE)
    country_ix = np.searchsorted(countries, country[rows].astype(str))
    combos, codes = np.unique(country_ix * 1000 + digits * 10 + lead, return_inverse=True)
    shapes = np.array(
        [_shape(countries[x // 1000], x // 10 % 100, x % 10) for x in combos.tolist()],
        dtype=object,
    )[codes]
    text = number.astype(np.dtypes.StringDType())
    draws = draw[rows]
    for shape in sorted(set(shapes.tolist())):
        family, bounds = _SHAPES[shape]
        in_shape = np.flatnonzero(shapes == shape)
        style = np.minimum(
            np.searchsorted(_style_thresholds(family), draws[in_shape] / 1000, side="right"),
            len(_PHONE_STYLES[family]) - 1,
        )
        for s in np.unique(style).tolist():
            sub = in_shape[style == s]
            parts = text[sub]
            written = np.zeros(len(sub), dtype=np.dtypes.StringDType())
            for literal, field, _, _ in Formatter().parse(_PHONE_STYLES[family][s][0]):
                if literal:
                    written = np.strings.add(written, literal)
                if field == "n":
                    written = np.strings.add(written, parts)
                elif field is not None:
                    start, stop = bounds[int(field)]
                    written = np.strings.add(written, np.strings.slice(parts, start, stop))
            out[rows[sub]] = written.astype(object)
    return out


@cache
def _head_options(country: str, city: int, land: bool) -> tuple[tuple[str, int], ...]:
    """Ways to draw a number: (leading digits, total digits)."""
    if country == "CN":
        if land:
            area = _CN_PLACES[city][2]
            total = len(area) + (7 if area in _CN_SEVEN_DIGIT_AREAS else 8)
            return tuple((area + d, total) for d in "2345678")
        return tuple((h, 11) for h in _MOBILE_HEADS["CN"])
    areas = _EN_PLACES[city][3]
    if country in _NANP:  # area code, then an exchange that does not start with 0 or 1
        return tuple((a + d, 10) for a in areas for d in "23456789")
    total = {"GB": 10, "AU": 9, "SG": 8}[country]
    heads = areas if land else _MOBILE_HEADS[country]
    return tuple((h, total) for h in heads)


@cache
def _number_patterns(country: str) -> tuple[str, str]:
    """Regular expressions of libphonenumber for any number and for fixed or mobile lines."""
    meta = phonenumbers.PhoneMetadata.metadata_for_region(country)
    if meta is None or meta.general_desc is None:
        raise ValueError(f"phonenumbers has no metadata for {country}")
    lines = "|".join(
        f"(?:{d.national_number_pattern})"
        for d in (meta.fixed_line, meta.mobile)
        if d is not None and d.national_number_pattern
    )
    return f"^(?:{meta.general_desc.national_number_pattern})$", f"^(?:{lines})$"


def _valid_numbers(country: np.ndarray, nsn: np.ndarray) -> np.ndarray:
    """Which numbers are valid fixed or mobile lines of their country (as ``phonenumbers``)."""
    ok = np.zeros(len(nsn), dtype=bool)
    for code in np.unique(country).tolist():
        rows = np.flatnonzero(country == code)
        digits = pa.array(nsn[rows].astype(str))
        general, lines = _number_patterns(code)
        ok[rows] = np.asarray(
            pc.and_(
                pc.match_substring_regex(digits, general), pc.match_substring_regex(digits, lines)
            )
        )
    return ok


def _draw_numbers(
    rng: np.random.Generator, country: np.ndarray, city: np.ndarray, land: np.ndarray
) -> np.ndarray:
    """Valid national significant numbers (int64) for each row's country and city."""
    out = np.zeros(len(country), dtype=np.int64)
    todo = np.arange(len(country))
    for _ in range(100):
        if not len(todo):
            return out
        key = (country[todo] == "CN") * 10_000 + city[todo] * 2 + land[todo]
        for group in np.unique(key).tolist():
            rows = todo[key == group]
            first = rows[0]
            options = _head_options(str(country[first]), int(city[first]), bool(land[first]))
            pick = rng.integers(0, len(options), len(rows))
            for o, (head, total) in enumerate(options):
                sub = rows[pick == o]
                width = total - len(head)
                out[sub] = int(head) * 10**width + rng.integers(0, 10**width, len(sub))
        todo = todo[~_valid_numbers(country[todo], out[todo])]
    raise RuntimeError("could not draw valid phone numbers")


# --------------------------------------------------------------------------------------------
# Generator
# --------------------------------------------------------------------------------------------


class _Builder:
    """Holds the random streams and pools of one ``generate`` call."""

    def __init__(self, *, seed: int, end: date, years: int) -> None:
        streams = np.random.SeedSequence(seed).spawn(12)
        self.rng = {
            name: np.random.default_rng(s)
            for name, s in zip(
                (
                    "pools",
                    "users",
                    "customers",
                    "phones",
                    "emails",
                    "dups",
                    "interactions",
                    "deals",
                    "orders",
                    "contracts",
                    "tickets",
                    "tasks",
                ),
                streams,
                strict=True,
            )
        }
        self.dup_random = random.Random(int(streams[5].generate_state(1)[0]))
        self.faker = {loc: Faker(loc) for loc in ("en_US", "en_GB")}
        for i, f in enumerate(self.faker.values()):
            f.seed_instance(seed * 31 + i)
        self.end = int(datetime(end.year, end.month, end.day, tzinfo=UTC).timestamp())
        start_year = end.year - years
        day = min(end.day, 28) if end.month == 2 else end.day
        self.start = int(datetime(start_year, end.month, day, tzinfo=UTC).timestamp())
        self.end_day = self.end // DAY
        self._pools()

    # ---- pools ---------------------------------------------------------------------------

    def _pools(self) -> None:
        rng = self.rng["pools"]
        # Chinese names: surnames with Faker's frequencies; given names single or double.
        surnames = list(_CnNames.last_names.items())
        self.cn_surnames = np.array([s for s, _ in surnames], dtype=object)
        self.cn_surname_p = np.array([w for _, w in surnames]) / sum(w for _, w in surnames)
        singles = list(dict.fromkeys([*_CnNames.first_names_male, *_CnNames.first_names_female]))
        singles_1 = [s for s in singles if len(s) == 1]
        doubles = {
            _CN_GIVEN_FIRST[int(a)] + singles_1[int(b)]
            for a, b in zip(
                rng.integers(0, len(_CN_GIVEN_FIRST), 4000),
                rng.integers(0, len(singles_1), 4000),
                strict=True,
            )
        }
        doubles_list = sorted(doubles)
        self.cn_given = np.array(singles + doubles_list, dtype=object)
        weights = np.r_[
            np.full(len(singles), 0.38 / len(singles)),
            np.full(len(doubles_list), 0.62 / len(doubles_list)),
        ]
        self.cn_given_p = weights / weights.sum()
        self.cn_surname_py = np.array(
            ["".join(_pinyin(s, surname=True)).title() for s in self.cn_surnames], dtype=object
        )
        self.cn_given_py = np.array(
            ["".join(_pinyin(g)).title() for g in self.cn_given], dtype=object
        )
        # English names
        self.us_first = np.array(
            [*_UsNames.first_names_male, *_UsNames.first_names_female], dtype=object
        )
        p = np.array([*_UsNames.first_names_male.values(), *_UsNames.first_names_female.values()])
        self.us_first_p = p / p.sum()
        self.us_last = np.array(list(_UsNames.last_names), dtype=object)
        p = np.array(list(_UsNames.last_names.values()))
        self.us_last_p = p / p.sum()
        self.gb_first = np.array(
            list(dict.fromkeys([*_GbNames.first_names_male, *_GbNames.first_names_female])),
            dtype=object,
        )
        self.gb_last = np.array(list(_GbNames.last_names), dtype=object)
        p = np.array(list(_GbNames.last_names.values()), dtype=float)
        self.gb_last_p = p / p.sum()
        # English street names: Faker surnames and common words with common suffixes.
        stems = [self.faker["en_US"].last_name() for _ in range(300)]
        stems += [self.faker["en_GB"].last_name() for _ in range(300)]
        stems += list(_EN_STREET_WORDS) * 8
        sfx = _pick(rng, _EN_STREET_SUFFIXES, 3000)
        stem = np.array(stems, dtype=object)[rng.integers(0, len(stems), 3000)]
        self.en_streets = np.array(
            sorted({f"{a} {b}" for a, b in zip(stem, sfx, strict=True)}), dtype=object
        )
        # Company brands: curated ones, two-character Chinese combinations, English surnames.
        chars = sorted(set("".join(_CN_BRANDS)))
        char_py = {ch: "".join(_pinyin(ch)) for ch in chars}
        combos = [a + b for a in chars for b in chars if a != b]
        self.cn_brands = np.array([*_CN_BRANDS, *combos], dtype=object)
        self.cn_brand_py = np.array(
            ["".join(char_py[ch] for ch in brand) for brand in self.cn_brands], dtype=object
        )
        weights = np.r_[np.full(len(_CN_BRANDS), 0.35 / len(_CN_BRANDS)),
                        np.full(len(combos), 0.65 / len(combos))]  # fmt: skip
        self.cn_brand_p = weights / weights.sum()
        self.surnames = np.array(sorted({*_UsNames.last_names, *_GbNames.last_names}), dtype=object)

    # ---- users ---------------------------------------------------------------------------

    def users(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Teams and staff: an admin, a manager per sales team, sales, support and others."""
        rng = self.rng["users"]
        n_sales = int(rng.integers(6, 11))
        n_teams = 2 if n_sales < 8 else 3
        team_names = ["华东销售部", "华南销售部", "International Sales"]
        if n_teams == 2:
            team_names = ["中国区销售部", "International Sales"]
        teams = pd.DataFrame({"id": np.arange(1, n_teams + 1), "name": team_names})
        intl = n_teams
        sales_team = [intl if i % 3 == 2 else 1 + i % (n_teams - 1) for i in range(n_sales)]
        roles = ["admin"] + ["manager"] * n_teams + ["sales"] * n_sales
        roles += ["support", "support", "data_steward", "analyst"]
        team_of = [0, *range(1, n_teams + 1), *sales_team, 0, 0, 0, 0]
        locales = [
            ("en_GB" if i % 2 else "en_US") if t == intl else "zh_CN" for i, t in enumerate(team_of)
        ]
        locales[0] = "en_US"
        locales[-4:] = ["zh_CN", "en_US", "zh_CN", "en_GB"]
        usernames: list[str] = ["admin"]
        display: list[str] = ["Administrator"]
        for loc in locales[1:]:
            while True:
                if loc == "zh_CN":
                    s = str(self.cn_surnames[_choice(rng, 1, self.cn_surname_p)[0]])
                    g = str(self.cn_given[_choice(rng, 1, self.cn_given_p)[0]])
                    name = s + g
                    user = f"{''.join(_pinyin(g))}.{''.join(_pinyin(s, surname=True))}"
                elif loc == "en_GB":
                    first = self.gb_first[rng.integers(0, len(self.gb_first))]
                    last = self.gb_last[_choice(rng, 1, self.gb_last_p)[0]]
                    name, user = f"{first} {last}", f"{first}.{last}"
                else:
                    first = self.us_first[_choice(rng, 1, self.us_first_p)[0]]
                    last = self.us_last[_choice(rng, 1, self.us_last_p)[0]]
                    name, user = f"{first} {last}", f"{first}.{last}"
                user = "".join(ch for ch in user.lower() if ch.isalnum() or ch == ".")
                if user not in usernames:
                    break
            usernames.append(user)
            display.append(name)
        ids = np.arange(1, len(roles) + 1)
        users = pd.DataFrame(
            {
                "id": ids,
                "username": usernames,
                "display_name": display,
                "role": roles,
                "team_id": _nullable(np.array(team_of)),
                "email": [f"{u}@{_STAFF_DOMAIN}" for u in usernames],
                "locale": locales,
            }
        )
        role, team = np.array(roles), np.array(team_of)
        self.n_teams = n_teams
        self.intl_team = intl
        self.sales_by_team = {
            t: ids[(role == "sales") & (team == t)] for t in range(1, n_teams + 1)
        }
        self.support_ids = ids[role == "support"]
        return teams.astype(_DTYPES["teams"]), users.astype(_DTYPES["users"])

    # ---- customers: originals --------------------------------------------------------------

    def originals(self, n: int) -> dict[str, np.ndarray]:
        """Profile arrays of the original (non-duplicate) customers, plus helper arrays."""
        rng = self.rng["customers"]
        c: dict[str, np.ndarray] = {}
        is_cn = rng.random(n) < 0.5
        is_company = rng.random(n) < 0.10
        c["is_cn"] = is_cn
        c["kind"] = np.where(is_company, "company", "person").astype(object)
        # country and city
        country = np.empty(n, dtype=object)
        country[is_cn] = "CN"
        codes = list(_EN_COUNTRY_P)
        country[~is_cn] = np.array(codes, dtype=object)[
            _choice(rng, int((~is_cn).sum()), list(_EN_COUNTRY_P.values()))
        ]
        city = np.zeros(n, dtype=np.int64)
        city[is_cn] = _choice(rng, int(is_cn.sum()), [p[4] for p in _CN_PLACES])
        for code in codes:
            rows = np.flatnonzero(country == code)
            options = [i for i, p in enumerate(_EN_PLACES) if p[0] == code]
            city[rows] = np.array(options)[
                _choice(rng, len(rows), [_EN_PLACES[i][5] for i in options])
            ]
        # contact persons: some persons work for a generated company of the same country
        company_ix = np.full(n, -1, dtype=np.int64)
        person_rows = np.flatnonzero(~is_company & (rng.random(n) < 0.3))
        for code in ["CN", *codes]:
            comps = np.flatnonzero(is_company & (country == code))
            rows = person_rows[country[person_rows] == code]
            if len(comps) and len(rows):
                company_ix[rows] = comps[rng.integers(0, len(comps), len(rows))]
        is_contact = company_ix >= 0
        contact_rows = np.flatnonzero(is_contact)
        country[contact_rows] = country[company_ix[contact_rows]]
        same_site = is_contact & (rng.random(n) < 0.6)
        city[is_contact] = np.where(
            same_site[is_contact], city[company_ix[is_contact]], city[is_contact]
        )
        c["country"] = country
        c["city_ix"] = city
        c["company_ix"] = company_ix
        # time zone per row
        tz = np.full(n, 8, dtype=np.int64)
        en = ~is_cn
        tz[en] = np.array([p[4] for p in _EN_PLACES])[city[en]]
        c["tz"] = tz
        self._names(c, rng, n)
        self._companies(c, rng, n)
        self._addresses(c, rng, n, same_site)
        self._classification(c, rng, n)
        self._phones(c, n)
        self._emails(c, n)
        return c

    def _names(self, c: dict[str, np.ndarray], rng: np.random.Generator, n: int) -> None:
        is_cn = c["is_cn"]
        first = np.empty(n, dtype=object)
        last = np.empty(n, dtype=object)
        first_ascii = np.empty(n, dtype=object)
        last_ascii = np.empty(n, dtype=object)
        cn = np.flatnonzero(is_cn)
        s_ix = _choice(rng, len(cn), self.cn_surname_p)
        g_ix = _choice(rng, len(cn), self.cn_given_p)
        last[cn] = self.cn_surnames[s_ix]
        first[cn] = self.cn_given[g_ix]
        last_ascii[cn] = self.cn_surname_py[s_ix]
        first_ascii[cn] = self.cn_given_py[g_ix]
        gb = np.flatnonzero(c["country"] == "GB")
        first[gb] = self.gb_first[rng.integers(0, len(self.gb_first), len(gb))]
        last[gb] = self.gb_last[_choice(rng, len(gb), self.gb_last_p)]
        us = np.flatnonzero(~is_cn & (c["country"] != "GB"))
        first[us] = self.us_first[_choice(rng, len(us), self.us_first_p)]
        last[us] = self.us_last[_choice(rng, len(us), self.us_last_p)]
        en = np.flatnonzero(~is_cn)
        first_ascii[en] = first[en]
        last_ascii[en] = last[en]
        c["first"], c["last"] = first, last
        c["first_ascii"], c["last_ascii"] = first_ascii, last_ascii
        c["first_key"], c["last_key"] = _ascii_key(first_ascii), _ascii_key(last_ascii)
        name = np.empty(n, dtype=object)
        name[cn] = last[cn] + first[cn]
        name[en] = first[en] + " " + last[en]
        c["name"] = name
        # birthdays: persons, age 20-70 at the end date, known for about half
        days = self.end_day - (rng.random(n) * 50 * 365.25 + 20 * 365.25).astype(np.int64)
        known = (c["kind"] == "person") & (rng.random(n) < np.where(is_cn, 0.6, 0.45))
        c["birthday"] = days
        c["birthday_known"] = known

    def _company_names(
        self, rng: np.random.Generator, country: np.ndarray, city: np.ndarray, industry: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Company names with their brand slug (for web domains) and legal suffix."""
        n = len(country)
        names = np.empty(n, dtype=object)
        slugs = np.empty(n, dtype=object)
        suffixes = np.empty(n, dtype=object)
        cn = np.flatnonzero(country == "CN")
        brand_ix = _choice(rng, len(cn), self.cn_brand_p)
        brands = self.cn_brands[brand_ix]
        words = np.array([i[1] for i in _INDUSTRIES], dtype=object)[industry[cn]]
        sfx = _pick(rng, _CN_SUFFIXES, len(cn))
        city_short = np.array([p[1].removesuffix("市") for p in _CN_PLACES], dtype=object)
        with_city = rng.random(len(cn)) < 0.75
        prefix = np.where(with_city, city_short[city[cn]], "")
        names[cn] = prefix + brands + words + sfx
        web_word = np.array([i[3] for i in _INDUSTRIES], dtype=object)[industry[cn]]
        slugs[cn] = self.cn_brand_py[brand_ix] + np.where(rng.random(len(cn)) < 0.5, web_word, "")
        suffixes[cn] = sfx
        for code, options in _EN_SUFFIXES.items():
            rows = np.flatnonzero(country == code)
            k = len(rows)
            if not k:
                continue
            surname = self.surnames[rng.integers(0, len(self.surnames), (2, k))]
            form = _choice(rng, k, [0.3, 0.4, 0.2, 0.1])
            brand = np.select(
                [form == 0, form == 1, form == 2],
                [
                    np.array(_EN_BRANDS, dtype=object)[rng.integers(0, len(_EN_BRANDS), k)],
                    surname[0],
                    surname[0] + " & " + surname[1],
                ],
                surname[0] + " and Sons",
            )
            word = np.array([i[2] for i in _INDUSTRIES], dtype=object)[industry[rows]]
            word = np.where(rng.random(k) < 0.75, " " + word, "")
            sfx = _pick(rng, options, k)
            names[rows] = brand + word + " " + sfx
            slugs[rows] = _ascii_key(brand + np.where(rng.random(k) < 0.5, word, ""))
            suffixes[rows] = sfx
        return names, slugs, suffixes

    def _companies(self, c: dict[str, np.ndarray], rng: np.random.Generator, n: int) -> None:
        is_company = c["kind"] == "company"
        company_ix = c["company_ix"]
        industry = _choice(
            rng, n, [1.5, 1.2, 1.5, 1.2, 1.0, 0.8, 0.7, 0.6, 0.5, 0.7, 0.8, 0.6, 0.4, 0.8, 0.6, 0.8]
        )
        names, slugs, suffixes = self._company_names(rng, c["country"], c["city_ix"], industry)
        employed = is_company | (company_ix >= 0) | (rng.random(n) < 0.45)
        contact = company_ix >= 0
        names[contact] = names[company_ix[contact]]
        slugs[contact] = slugs[company_ix[contact]]
        industry[contact] = industry[company_ix[contact]]
        c["company"] = _keep(employed, names)
        c["company_slug"] = slugs
        c["employed"] = employed
        c["name"][is_company] = names[is_company]
        codes = np.array([i[0] for i in _INDUSTRIES], dtype=object)
        known_industry = employed & ((rng.random(n) < 0.8) | is_company)
        c["industry"] = _keep(known_industry, codes[industry])
        size = _choice(rng, n, [0.3, 0.3, 0.2, 0.12, 0.08])
        size[contact] = size[company_ix[contact]]
        sizes = np.array(_SIZES, dtype=object)
        c["size"] = _keep(is_company | (employed & (rng.random(n) < 0.5)), sizes[size])
        cn_pos = np.array(_CN_POSITIONS, dtype=object)[rng.integers(0, len(_CN_POSITIONS), n)]
        en_pos = np.array(_EN_POSITIONS, dtype=object)[rng.integers(0, len(_EN_POSITIONS), n)]
        has_pos = employed & ~is_company & (rng.random(n) < 0.85)
        c["position"] = _keep(has_pos, np.where(c["is_cn"], cn_pos, en_pos))

    def _addresses(
        self, c: dict[str, np.ndarray], rng: np.random.Generator, n: int, same_site: np.ndarray
    ) -> None:
        is_cn = c["is_cn"]
        city = c["city_ix"]
        province = np.empty(n, dtype=object)
        city_name = np.empty(n, dtype=object)
        district = np.full(n, None, dtype=object)
        street = np.empty(n, dtype=object)
        postcode = np.empty(n, dtype=object)
        cn = np.flatnonzero(is_cn)
        province[cn] = np.array([p[0] for p in _CN_PLACES], dtype=object)[city[cn]]
        city_name[cn] = np.array([p[1] for p in _CN_PLACES], dtype=object)[city[cn]]
        u = rng.random(len(cn))
        district[cn] = [
            _CN_PLACES[ci][5][int(x * len(_CN_PLACES[ci][5]))]
            for ci, x in zip(city[cn].tolist(), u.tolist(), strict=True)
        ]
        road = np.array(_CN_ROADS, dtype=object)[rng.integers(0, len(_CN_ROADS), len(cn))]
        number = rng.integers(1, 999, len(cn))
        bldg = np.array(_CN_BUILDINGS, dtype=object)[rng.integers(0, len(_CN_BUILDINGS), len(cn))]
        block = np.array(list("ABCD"), dtype=object)[rng.integers(0, 4, len(cn))]
        room = rng.integers(2, 33, len(cn)) * 100 + rng.integers(1, 20, len(cn))
        with_bldg = rng.random(len(cn)) < 0.35
        street[cn] = [
            f"{r}{k}号{b}{bl}座{rm}室" if w else f"{r}{k}号"
            for r, k, b, bl, rm, w in zip(
                road, number.tolist(), bldg, block, room.tolist(), with_bldg.tolist(), strict=True
            )
        ]
        post3 = np.array([p[3] for p in _CN_PLACES], dtype=object)[city[cn]]
        postcode[cn] = [
            f"{p}{k:03d}"
            for p, k in zip(post3, rng.integers(0, 100, len(cn)).tolist(), strict=True)
        ]
        en = np.flatnonzero(~is_cn)
        province[en] = np.array([p[1] for p in _EN_PLACES], dtype=object)[city[en]]
        city_name[en] = np.array([p[2] for p in _EN_PLACES], dtype=object)[city[en]]
        u = rng.random(len(en))
        has_district = rng.random(len(en)) < 0.6
        district[en] = [
            _EN_PLACES[ci][7][int(x * len(_EN_PLACES[ci][7]))] if _EN_PLACES[ci][7] and h else None
            for ci, x, h in zip(city[en].tolist(), u.tolist(), has_district.tolist(), strict=True)
        ]
        num = rng.integers(1, 400, len(en))
        name = self.en_streets[rng.integers(0, len(self.en_streets), len(en))]
        unit = rng.integers(1, 30, len(en))
        with_unit = rng.random(len(en))
        street[en] = [
            f"{k} {s}, Suite {u * 10}"
            if w < 0.12
            else f"Apt {u}, {k} {s}"
            if w < 0.2
            else f"{k} {s}"
            for k, s, u, w in zip(
                num.tolist(), name, unit.tolist(), with_unit.tolist(), strict=True
            )
        ]
        postcode[en] = self._en_postcodes(rng, city[en])
        # contacts at the company's site share its address
        contact = np.flatnonzero(same_site)
        src = c["company_ix"][contact]
        for arr in (province, city_name, district, street, postcode):
            arr[contact] = arr[src]
        c["province"], c["city"], c["district"] = province, city_name, district
        c["street"], c["postcode"] = street, postcode

    @staticmethod
    def _en_postcodes(rng: np.random.Generator, city: np.ndarray) -> np.ndarray:
        out = np.empty(len(city), dtype=object)
        letters = np.array(list("ABDEFGHJLNPQRSTUWXYZ"), dtype=object)
        for ci in np.unique(city).tolist():
            rows = np.flatnonzero(city == ci)
            k = len(rows)
            country, rule = _EN_PLACES[ci][0], _EN_PLACES[ci][6]
            if country == "US":
                out[rows] = [f"{rule}{x:02d}" for x in rng.integers(1, 99, k).tolist()]
            elif country == "AU":
                lo, hi = (int(x) for x in rule.split("-"))
                out[rows] = [str(x) for x in rng.integers(lo, hi + 1, k).tolist()]
            elif country == "SG":
                out[rows] = [
                    f"{a:02d}{b:04d}"
                    for a, b in zip(
                        rng.integers(1, 81, k).tolist(),
                        rng.integers(0, 10000, k).tolist(),
                        strict=True,
                    )
                ]
            else:
                outward = np.array(rule.split(), dtype=object)[
                    rng.integers(0, len(rule.split()), k)
                ]
                d = rng.integers(0, 10, k).tolist()
                a = letters[rng.integers(0, len(letters), k)]
                b = letters[rng.integers(0, len(letters), k)]
                if country == "GB":
                    out[rows] = [
                        f"{o} {x}{y}{z}" for o, x, y, z in zip(outward, d, a, b, strict=True)
                    ]
                else:  # Canada: FSA + digit letter digit
                    e = rng.integers(0, 10, k).tolist()
                    out[rows] = [
                        f"{o} {x}{y}{z}" for o, x, y, z in zip(outward, d, a, e, strict=True)
                    ]
        return out

    def _classification(self, c: dict[str, np.ndarray], rng: np.random.Generator, n: int) -> None:
        is_cn = c["is_cn"]
        is_company = c["kind"] == "company"
        # created_at: business grows, so later years hold more records
        created = self.start + ((rng.random(n) ** (2 / 3)) * (self.end - self.start - DAY)).astype(
            np.int64
        )
        contact = np.flatnonzero(c["company_ix"] >= 0)
        parent = created[c["company_ix"][contact]]
        created[contact] = np.maximum(
            created[contact], parent + (rng.random(len(contact)) * (self.end - parent) * 0.5)
        ).astype(np.int64)
        created = _office_hours(rng, created, c["tz"], np.full(n, self.start), np.full(n, self.end))
        if len(contact):  # keep contacts after their company even after the office-hours move
            created[contact] = np.maximum(created[contact], created[c["company_ix"][contact]] + 60)
        c["created"] = np.minimum(created, self.end - 1)
        age = (self.end - c["created"]) / (365.25 * DAY)
        stage = _choice(rng, n, [0.22, 0.15, 0.38, 0.07, 0.1, 0.08])
        young = age < 1.0
        stage = np.where(young & (stage >= 3), 2, stage)  # VIP/dormant/churned need history
        stage = np.where(young & (age < 0.15) & (stage == 2) & (rng.random(n) < 0.5), 0, stage)
        c["stage"] = stage
        tier = np.where(
            stage == 3,
            0,
            np.where(
                stage == 2,
                _choice(rng, n, [0.15, 0.45, 0.4]),
                np.where(
                    stage <= 1,
                    _choice(rng, n, [0.02, 0.2, 0.78]),
                    _choice(rng, n, [0.05, 0.45, 0.5]),
                ),
            ),
        )
        c["tier"] = tier
        src = np.where(is_cn, _choice(rng, n, _SOURCE_P_CN), _choice(rng, n, _SOURCE_P_EN)).astype(
            np.int64
        )
        c["source"] = np.array(_SOURCES, dtype=object)[src]
        # owners: Chinese customers go to the Chinese teams, the rest to International
        owner = self._owners(rng, c)
        unowned = (stage == 0) & (rng.random(n) < 0.45) | (rng.random(n) < 0.02)
        c["owner"] = np.where(unowned, 0, owner)
        # tags as a bit mask rendered through a lookup table
        p = np.zeros((n, len(_TAGS)))
        p[:, 0] = np.where(is_cn, np.where(src == 4, 0.8, 0.25), 0.0)
        p[:, 1] = np.where(tier == 0, 0.45, 0.02) + is_company * 0.1
        p[:, 2] = 0.18
        p[:, 3] = np.where(stage == 3, 0.4, 0.01)
        p[:, 4] = np.where(tier == 2, 0.12, 0.04)
        p[:, 5] = np.where(stage <= 1, 0.15, 0.04)
        p[:, 6] = np.where(is_company, 0.35, 0.05)
        p[:, 7] = 0.03
        p[:, 8] = np.where(src == 6, 0.6, 0.01)
        p[:, 9] = np.where(src == 2, 0.5, 0.01)
        bits = (rng.random((n, len(_TAGS))) < p) @ (1 << np.arange(len(_TAGS)))
        table = np.array(
            [
                ";".join(t for i, t in enumerate(_TAGS) if m >> i & 1)
                for m in range(1 << len(_TAGS))
            ],
            dtype=object,
        )
        c["tags"] = table[bits]

    def _owners(self, rng: np.random.Generator, c: dict[str, np.ndarray]) -> np.ndarray:
        n = len(c["is_cn"])
        team = np.full(n, self.intl_team, dtype=np.int64)
        team[c["is_cn"]] = 1
        if self.n_teams == 3:
            south = np.isin(c["province"], _CN_SOUTH) & c["is_cn"]
            team[south] = 2
        c["team"] = team
        return self._sales_of(rng, team)

    def _sales_of(self, rng: np.random.Generator, team: np.ndarray) -> np.ndarray:
        out = np.zeros(len(team), dtype=np.int64)
        u = rng.random(len(team))
        for t, pool in self.sales_by_team.items():
            if len(pool) == 0:
                continue
            rows = team == t
            out[rows] = pool[(u[rows] * len(pool)).astype(np.int64)]
        return out

    def _phones(self, c: dict[str, np.ndarray], n: int) -> None:
        rng = self.rng["phones"]
        country = c["country"]
        city = c["city_ix"]
        is_company = c["kind"] == "company"
        land = np.where(is_company, rng.random(n) < 0.8, rng.random(n) < 0.06)
        nsn = _draw_numbers(rng, country, city, land)
        has = rng.random(n) >= np.where(c["is_cn"], 0.04, 0.07)
        # second phone: an office line for people at a company, else a second mobile
        second = np.flatnonzero(rng.random(n) < np.where(c["employed"], 0.22, 0.05))
        nsn2 = np.zeros(n, dtype=np.int64)
        nsn2[second] = _draw_numbers(rng, country[second], city[second], c["employed"][second])
        c["phone_nsn"], c["phone2_nsn"] = np.where(has, nsn, 0), nsn2
        c["phone_style"] = rng.integers(0, 1_000, n)
        c["phone2_style"] = rng.integers(0, 1_000, n)

    def unique_phones(self, c: dict[str, np.ndarray], cluster: np.ndarray) -> None:
        """Give a new mobile number to rows whose number a different cluster already uses."""
        rng = self.rng["phones"]
        cc = pd.Series(c["country"]).map(_COUNTRY_CODE).to_numpy(dtype=np.int64)
        for _ in range(10):
            nsn = c["phone_nsn"]
            key = np.where(nsn > 0, cc * 10**13 + nsn, -1)
            clash = _clashes(key, cluster)
            if not len(clash):
                return
            c["phone_nsn"][clash] = _draw_numbers(
                rng, c["country"][clash], c["city_ix"][clash], np.zeros(len(clash), dtype=bool)
            )

    def _emails(self, c: dict[str, np.ndarray], n: int) -> None:
        rng = self.rng["emails"]
        email = self._email_addresses(rng, c, np.arange(n))
        has = rng.random(n) >= np.where(c["is_cn"], 0.15, 0.08)
        c["email"] = _keep(has, email)

    @staticmethod
    def _email_addresses(
        rng: np.random.Generator, c: dict[str, np.ndarray], rows: np.ndarray
    ) -> np.ndarray:
        """One plausible address per row (personal, work or generic company mailbox)."""
        k = len(rows)
        country = c["country"][rows]
        is_cn = country == "CN"
        f, s = c["first_key"][rows], c["last_key"][rows]
        yy = _TWO_DIGITS[(1970 + c["birthday"][rows] / 365.25).astype(np.int64) % 100]
        d = _TWO_DIGITS[rng.integers(0, 100, k)] + np.where(
            rng.random(k) < 0.5, _DIGITS[rng.integers(0, 10, k)], ""
        )
        pattern = rng.integers(0, 8, k) + np.where(is_cn, 0, 8)
        local = np.empty(k, dtype=object)
        for p in np.unique(pattern).tolist():
            m = np.flatnonzero(pattern == p)
            local[m] = _LOCAL_PARTS[p](f[m], s[m], yy[m], d[m])
        free = np.empty(k, dtype=object)
        tld = np.empty(k, dtype=object)
        for code, options in _FREE_MAIL.items():
            m = country == code
            free[m] = _pick(rng, options, int(m.sum()))
            tld[m] = np.array(_WORK_TLD[code], dtype=object)[
                rng.integers(0, len(_WORK_TLD[code]), int(m.sum()))
            ]
        slug = c["company_slug"][rows]
        is_company = c["kind"][rows] == "company"
        use_work = np.where(
            is_company, rng.random(k) < 0.85, c["employed"][rows] & (rng.random(k) < 0.45)
        )
        qq = is_cn & ~use_work & (free == "qq.com") & (pattern % 8 < 5)
        local[qq] = rng.integers(10_000, 3_999_999_999, int(qq.sum())).astype(str).astype(object)
        work = np.flatnonzero(use_work & (pattern % 8 >= 4))  # work addresses stay short
        for p, rows_p in ((8, work[pattern[work] % 2 == 1]), (9, work[pattern[work] % 2 == 0])):
            local[rows_p] = _LOCAL_PARTS[p](f[rows_p], s[rows_p], yy[rows_p], d[rows_p])
        boxes = np.array(["info", "sales", "contact", "service", "hello", "office"], dtype=object)
        box = boxes[rng.integers(0, len(boxes), k)]
        local = np.where(is_company, np.where(use_work, box, slug + d), local)
        return local + "@" + np.where(use_work, slug + tld, free)

    def unique_emails(self, email: np.ndarray, cluster: np.ndarray) -> np.ndarray:
        """Add digits to addresses that a different cluster already uses (first one keeps it)."""
        rng = self.rng["emails"]
        email = email.copy()
        owner: dict[str, int] = {}
        clashes = []
        for i, (key, group) in enumerate(zip(_email_keys(email), cluster.tolist(), strict=True)):
            if key is not None and owner.setdefault(key, group) != group:
                clashes.append(i)
        for i in clashes:
            local, _, domain = email[i].rpartition("@")
            name, plus, tag = local.partition("+")
            while True:
                candidate = f"{name}{rng.integers(2, 10_000)}{plus}{tag}@{domain}"
                key = _email_key(candidate)
                if owner.setdefault(key, int(cluster[i])) == cluster[i]:
                    break
            email[i] = candidate
        return email


def _email_key(email: str) -> str:
    """Identity of an address: lower case, no plus tag, no dots in the local part."""
    local, _, domain = email.lower().rpartition("@")
    return f"{local.split('+')[0].replace('.', '')}@{domain}"


def _email_keys(email: np.ndarray) -> list[str | None]:
    """``_email_key`` of each address (``None`` where there is none), computed by Arrow."""
    low = pc.utf8_lower(pa.array(email, type=pa.string(), from_pandas=True))
    local = pc.replace_substring_regex(low, r"@[^@]*$", "")
    domain = pc.replace_substring_regex(low, r"^.*@", "")
    local = pc.replace_substring(pc.replace_substring_regex(local, r"\+.*$", ""), ".", "")
    return pc.binary_join_element_wise(local, domain, "@").to_pylist()


def _clashes(key: np.ndarray, cluster: np.ndarray) -> np.ndarray:
    """Rows whose key (NaN or negative: none) first appeared in a different cluster."""
    key = np.asarray(key, dtype=float)
    rows = np.flatnonzero(~np.isnan(key) & (key >= 0))
    codes, _ = pd.factorize(key[rows])
    _, first = np.unique(codes, return_index=True)
    return rows[cluster[rows] != cluster[rows][first][codes]]


# --------------------------------------------------------------------------------------------
# Planted duplicates
# --------------------------------------------------------------------------------------------

_PROFILE = ("name", "company", "position", "phone_nsn", "phone2_nsn", "email", "province", "city",
            "district", "street", "postcode", "birthday_known")  # fmt: skip


def _vary_cn_name(rnd: random.Random, o: dict[str, list], j: int, strong: bool) -> str:
    last, first, name = o["last"][j], o["first"][j], o["name"][j]
    sur, giv = o["last_ascii"][j], o["first_ascii"][j]
    options = ["homophone", "space", "traditional"]
    if strong:
        options += ["pinyin", "pinyin", "title", "both"]
    for _ in range(4):
        op = rnd.choice(options)
        if op == "pinyin":
            form = rnd.randrange(4)
            return (f"{sur} {giv}", f"{giv} {sur}", f"{sur.upper()} {giv}", f"{sur}{giv}")[form]
        if op == "title":
            return f"{last}{'先生' if rnd.random() < 0.5 else '女士'}"
        if op == "both":
            return f"{giv} {sur} ({name})" if rnd.random() < 0.5 else f"{name} {giv} {sur}"
        if op == "space":
            return f"{last} {first}"
        if op == "traditional":
            out = _traditional(name)
            if out != name:
                return out
        if op == "homophone":
            spots = [i for i, ch in enumerate(first) if ch in _CN_HOMOPHONES]
            if spots:
                i = rnd.choice(spots)
                alt = rnd.choice(_CN_HOMOPHONES[first[i]])
                return last + first[:i] + alt + first[i + 1 :]
    return f"{last} {first}"


def _vary_en_name(rnd: random.Random, o: dict[str, list], j: int, strong: bool) -> str:
    first, last = o["first"][j], o["last"][j]
    op = rnd.choices(
        ("typo", "swap", "nick", "case", "middle", "initial"),
        weights=(0.3, 0.2, 0.25, 0.1, 0.1, 0.05 if strong else 0.0),
    )[0]
    if op == "nick" and first in _NICKNAMES:
        return f"{rnd.choice(_NICKNAMES[first])} {last}"
    if op == "swap":
        return f"{last}, {first}" if rnd.random() < 0.7 else f"{last.upper()} {first}"
    if op == "case":
        return f"{first} {last}".upper() if rnd.random() < 0.5 else f"{first} {last}".lower()
    if op == "middle":
        return f"{first} {rnd.choice('ABCDEFGHJKLMNPRSTW')}. {last}"
    if op == "initial":
        return f"{first[0]}. {last}"
    if rnd.random() < 0.5:
        return f"{_typo(rnd, first)} {last}"
    return f"{first} {_typo(rnd, last)}"


_EN_SUFFIX_SWAPS = tuple(
    sorted(
        {
            "Ltd": ("Limited", "Ltd.", ""),
            "Ltd.": ("Ltd", "Limited", ""),
            "Limited": ("Ltd", ""),
            "Inc.": ("Inc", "Incorporated", ""),
            "Inc": ("Inc.", ""),
            "LLC": ("L.L.C.", ", LLC", ""),
            "Corp.": ("Corporation", "Corp", ""),
            "Co.": ("Company", "Co", ""),
            "PLC": ("plc", ""),
            "LLP": ("", "L.L.P."),
            "Pty Ltd": ("Pty. Ltd.", "Pty Limited", ""),
            "Pty. Ltd.": ("Pty Ltd", ""),
            "Pte. Ltd.": ("Pte Ltd", "Private Limited", ""),
            "Pte Ltd": ("Pte. Ltd.", ""),
        }.items(),
        key=lambda item: -len(item[0]),
    )
)  # legal suffix -> its variants, longest first
_CN_CITY_SHORT = tuple(p[1].removesuffix("市") for p in _CN_PLACES)


def _vary_company(rnd: random.Random, company: str, is_cn: bool) -> str:
    if is_cn:
        options = []
        for sfx in ("股份有限公司", "有限责任公司", "集团有限公司", "有限公司", "集团"):
            if company.endswith(sfx):
                core = company.removesuffix(sfx)
                options += [core, core + "有限公司" if sfx != "有限公司" else core + "有限责任公司"]
                city = next((x for x in _CN_CITY_SHORT if core.startswith(x)), None)
                if city:
                    rest = core.removeprefix(city)
                    options += [rest + sfx, f"{rest}({city}){sfx}", f"{city}市{rest}{sfx}"]
                break
        options.append(_traditional(company))
        out = rnd.choice(options) if options else company
        return out if out != company else company.replace("有限公司", "")
    op = rnd.random()
    for sfx, alternatives in _EN_SUFFIX_SWAPS:
        if company.endswith(" " + sfx) and op < 0.7:
            core = company.removesuffix(" " + sfx)
            new = rnd.choice(alternatives)
            return core if not new else f"{core}{new}" if new.startswith(",") else f"{core} {new}"
    if op < 0.85 and " & " in company:
        return company.replace(" & ", " and ")
    if op < 0.9:
        return company.upper()
    return _typo(rnd, company)


def _vary_email(rnd: random.Random, email: str, how: str) -> str | None:
    local, _, domain = email.rpartition("@")
    if how == "case":
        return f"{local.title()}@{domain.title()}" if rnd.random() < 0.5 else email.upper()
    if how == "plus":
        return f"{local}+{rnd.choice(('crm', 'shop', 'news', 'work'))}@{domain}"
    if how == "dots" and domain == "gmail.com" and "." in local:
        return f"{local.replace('.', '')}@{domain}"
    if how == "dots" and domain == "gmail.com":
        return f"{local[:2]}.{local[2:]}@{domain}" if len(local) > 3 else email.upper()
    if how == "typo":
        new = _typo(rnd, local)
        if new[0].isalnum() and new[-1].isalnum() and ".." not in new:
            return f"{new}@{domain}"
    return f"{local.capitalize()}@{domain}"


def _vary_street(rnd: random.Random, street: str, is_cn: bool, city: str, district: str) -> str:
    if is_cn:
        op = rnd.randrange(3)
        if op == 0 and "号" in street:
            return street.split("号")[0] + "号"
        if op == 1:
            return f"{city}{district or ''}{street}"
        return street.replace("号", " 号 ").strip() if "号" in street else street + " "
    for long, short in _ABBREV.items():
        if f" {long}" in street:
            return street.replace(f" {long}", f" {short}")
    if "," in street:
        return street.split(", ")[-1] if street.startswith("Apt") else street.split(",")[0]
    return street.upper() if rnd.random() < 0.5 else street + "."


# fields a duplicate may change, and fields only read while varying
_VARIED = ("name", "company", "province", "company_ix", "position", "phone_nsn", "phone_style", "phone2_nsn",
           "phone2_style", "email", "city", "district", "street", "postcode", "birthday_known")  # fmt: skip
_READ = ("is_cn", "kind", "country", "first", "last", "first_ascii", "last_ascii")


def _plant_duplicates(b: _Builder, c: dict[str, np.ndarray], sources: np.ndarray) -> dict:
    """Copies of the ``c`` rows at ``sources`` with realistic variations (one per entry).

    Each copy follows one of four evidence patterns: A keeps phone and e-mail (reformatted),
    B loses the phone, C loses the e-mail, D loses both but keeps name, birthday and address.
    """
    rnd = b.dup_random
    rng = b.rng["dups"]
    k = len(sources)
    d: dict[str, np.ndarray] = {key: value[sources].copy() for key, value in c.items()}
    o = {f: c[f][sources].tolist() for f in (*_VARIED, *_READ)}
    v = {f: list(o[f]) for f in _VARIED}
    # spare contact details for copies that switched number or address
    no_land = np.zeros(k, dtype=bool)
    spare_nsn = _draw_numbers(rng, c["country"][sources], c["city_ix"][sources], no_land).tolist()
    spare_email = b._email_addresses(rng, c, sources).tolist()
    modes = np.array(list("ABCD"))[_choice(rng, k, [0.35, 0.25, 0.25, 0.15])].tolist()
    for j, mode in enumerate(modes):
        is_cn = o["is_cn"][j]
        is_company = o["kind"][j] == "company"
        # name and company
        if rnd.random() < {"A": 0.85, "B": 0.6, "C": 0.6, "D": 0.4}[mode]:
            if is_company:
                v["name"][j] = _vary_company(rnd, o["name"][j], is_cn)
            elif is_cn:
                v["name"][j] = _vary_cn_name(rnd, o, j, strong=mode != "D")
            else:
                v["name"][j] = _vary_en_name(rnd, o, j, strong=mode != "D")
        if is_company:
            v["company"][j] = v["name"][j]
        elif o["company"][j] is not None and rnd.random() < 0.35:
            v["company"][j] = (
                None
                if mode != "D" and rnd.random() < 0.3
                else _vary_company(rnd, o["company"][j], is_cn)
            )
        if o["company_ix"][j] >= 0 and rnd.random() < 0.3:
            v["company_ix"][j] = -1
        # phone: kept (often written differently) or lost
        nsn, country = o["phone_nsn"][j], o["country"][j]
        if mode in "AC":
            if nsn and rnd.random() < 0.65:
                v["phone_style"][j] = _restyle(rnd, country, nsn, o["phone_style"][j])
        else:
            op = rnd.random()
            if op < 0.35 and nsn:
                v["phone_nsn"][j] = spare_nsn[j]
            elif op < 0.5 and o["phone2_nsn"][j]:
                v["phone_nsn"][j], v["phone2_nsn"][j] = o["phone2_nsn"][j], 0
                v["phone_style"][j] = o["phone2_style"][j]
            else:
                v["phone_nsn"][j] = 0
        if v["phone2_nsn"][j] and rnd.random() < 0.5:
            v["phone2_nsn"][j] = 0
        # e-mail: kept (case, plus tag, dots) or lost (blank, another address, a typo)
        email = o["email"][j]
        if mode in "AB":
            if email is not None and rnd.random() < 0.6:
                how = rnd.choices(("case", "plus", "dots"), weights=(0.45, 0.3, 0.25))[0]
                v["email"][j] = _vary_email(rnd, email, how)
        else:
            op = rnd.random()
            if op < 0.35 or email is None:
                v["email"][j] = spare_email[j]
            elif op < 0.5:
                v["email"][j] = _vary_email(rnd, email, "typo")
            else:
                v["email"][j] = None
        # address and other details
        street = o["street"][j]
        if mode != "D" and rnd.random() < 0.4:
            field = rnd.choice(("city", "district", "postcode", "street", "street"))
            if field == "street":
                v["street"][j] = _vary_street(rnd, street, is_cn, o["city"][j], o["district"][j])
            else:
                v[field][j] = None
        elif mode == "D" and rnd.random() < 0.3:
            v["street"][j] = _vary_street(rnd, street, is_cn, o["city"][j], o["district"][j])
        if mode != "D" and o["birthday_known"][j] and rnd.random() < 0.4:
            v["birthday_known"][j] = False
        if not is_company and o["position"][j] is not None and rnd.random() < 0.1:
            v["position"][j] = None
        # make sure the copy differs from its original in at least one profile field
        restyled = (
            nsn
            and v["phone_nsn"][j] == nsn
            and _style_index(_shape_of(country, nsn), v["phone_style"][j])
            != _style_index(_shape_of(country, nsn), o["phone_style"][j])
        )
        if not restyled and all(v[f][j] == o[f][j] for f in _PROFILE):
            if v["phone_nsn"][j]:
                v["phone_style"][j] = _restyle(rnd, country, nsn, o["phone_style"][j])
            elif is_company:
                v["name"][j] = v["company"][j] = _vary_company(rnd, o["name"][j], is_cn)
            elif is_cn:
                v["name"][j] = _vary_cn_name(rnd, o, j, strong=False)
            else:
                v["name"][j] = _vary_en_name(rnd, o, j, strong=False)
    for f in _VARIED:
        d[f] = np.array(v[f], dtype=c[f].dtype)
    # a copy is often a new lead captured by someone else, from another channel
    created = c["created"][sources]
    d["created"] = np.minimum(
        created + 3600 + (rng.random(k) * (b.end - created)).astype(np.int64), b.end - 1
    )
    relead = rng.random(k) < 0.45
    d["stage"] = np.where(relead, 0, d["stage"])
    d["tier"] = np.where(relead, 2, d["tier"])
    other = b._sales_of(rng, d["team"])
    u = rng.random(k)
    d["owner"] = np.where(u < 0.5, d["owner"], np.where(u < 0.8, other, 0))
    d["source"] = np.where(
        rng.random(k) < 0.5, d["source"], np.array(_SOURCES, dtype=object)[rng.integers(0, 8, k)]
    )
    d["source"] = np.where((d["source"] == "wechat") & ~d["is_cn"], "website", d["source"])
    d["tags"] = np.where(rng.random(k) < 0.6, "", d["tags"])
    d["is_dup"] = np.ones(k, dtype=bool)
    return d


# --------------------------------------------------------------------------------------------
# Customers frame
# --------------------------------------------------------------------------------------------


def _duplicate_plan(rng: np.random.Generator, n_total: int, rate: float) -> tuple[int, np.ndarray]:
    """Number of originals and, for the duplicated ones, their index (repeated per copy)."""
    if n_total <= 1 or rate <= 0:
        return n_total, np.empty(0, dtype=np.int64)
    n0 = max(1, round(n_total / (1 + 1.4 * rate)))
    extra = n_total - n0
    picked = max(1, int(np.ceil(extra / 1.4)))
    picked = min(picked, n0, extra)
    counts = np.ones(picked, dtype=np.int64)
    counts[: extra - picked] += 1
    sources = rng.choice(n0, size=picked, replace=False)
    return n0, np.repeat(np.sort(sources), counts)


# arrays that outlive the customers frame (the history needs some of them)
_CARRIED = (
    "kind", "name", "company", "position", "industry", "size", "source", "email", "country",
    "province", "city", "district", "street", "postcode", "birthday", "birthday_known", "tags",
    "phone_nsn", "phone_style", "phone2_nsn", "phone2_style", "company_ix", "cluster_ix",
    "created", "stage", "tier", "owner", "team", "tz", "is_cn", "is_dup", "city_ix",
)  # fmt: skip


def _customers(b: _Builder, n_total: int, duplicate_rate: float) -> tuple[pd.DataFrame, dict]:
    n0, sources = _duplicate_plan(b.rng["dups"], n_total, duplicate_rate)
    c = b.originals(n0)
    c["is_dup"] = np.zeros(n0, dtype=bool)
    d = _plant_duplicates(b, c, sources)
    c["cluster_ix"] = np.arange(n0)
    d["cluster_ix"] = sources
    both = {key: np.concatenate([c[key], d[key]]) for key in _CARRIED}
    # ids in creation order
    order = np.argsort(both["created"], kind="stable")
    a = {key: value[order] for key, value in both.items()}
    new_id = np.empty(len(order), dtype=np.int64)
    new_id[order] = np.arange(1, len(order) + 1)
    a["id"] = np.arange(1, len(order) + 1)
    a["truth_cluster"] = new_id[a["cluster_ix"]]
    a["company_ref"] = np.where(a["company_ix"] >= 0, new_id[np.maximum(a["company_ix"], 0)], 0)
    # contact details: unique across clusters, then written the way people write them
    b.unique_phones(a, a["truth_cluster"])
    a["email"] = b.unique_emails(a["email"], a["truth_cluster"])
    phone = _render_phones(a["country"], a["phone_nsn"], a["phone_style"])
    phone2 = _render_phones(a["country"], a["phone2_nsn"], a["phone2_style"])
    frame = _frame(
        "customers",
        {
            "id": a["id"],
            "kind": a["kind"],
            "name": a["name"],
            "company_ref": _nullable(a["company_ref"]),
            "company": a["company"],
            "position": a["position"],
            "industry": a["industry"],
            "size": a["size"],
            "source": a["source"],
            "phone": phone,
            "phone2": phone2,
            "email": a["email"],
            "country": a["country"],
            "province": a["province"],
            "city": a["city"],
            "district": a["district"],
            "street": a["street"],
            "postcode": a["postcode"],
            "birthday": _dates(a["birthday"], a["birthday_known"]),
            "lifecycle_stage": _pooled(_STAGES, a["stage"]),
            "value_tier": _pooled(_TIERS, a["tier"]),
            "owner_id": _nullable(a["owner"]),
            "tags": a["tags"],
            "created_at": _ts(a["created"]),
            "truth_cluster": a["truth_cluster"],
        },
    )
    return frame, a


# --------------------------------------------------------------------------------------------
# History
# --------------------------------------------------------------------------------------------


class _History:
    """Child tables of the customers; every timestamp falls between creation and ``end``."""

    def __init__(self, b: _Builder, a: dict[str, np.ndarray], orders_per_customer: float):
        self.b = b
        self.a = a
        self.n = len(a["id"])
        self.orders_per_customer = orders_per_customer
        rng = b.rng["interactions"]
        stage = a["stage"]
        # last activity: dormant and churned customers went quiet months ago
        quiet = np.select(
            [stage == 4, stage == 5],
            [rng.uniform(180, 420, self.n), rng.uniform(200, 700, self.n)],
            0,
        )
        act_end = b.end - (quiet * DAY).astype(np.int64)
        self.act_end = np.maximum(act_end, a["created"] + DAY)
        self.act_end = np.minimum(self.act_end, b.end)
        self.currency = np.where(a["country"] == "CN", 0, np.where(a["country"] == "GB", 2, 1))
        self.zh = a["is_cn"]
        self.company = a["kind"] == "company"

    def _spawn(self, rng: np.random.Generator, rate: np.ndarray) -> np.ndarray:
        rate = rate * np.where(self.a["is_dup"], 0.5, 1.0)
        return np.repeat(np.arange(self.n), rng.poisson(rate))

    def _when(self, rng: np.random.Generator, parent: np.ndarray) -> np.ndarray:
        lo = self.a["created"][parent]
        hi = self.act_end[parent]
        t = _uniform_time(rng, lo, hi)
        return _office_hours(rng, t, self.a["tz"][parent], lo, hi)

    @staticmethod
    def _subject_body(
        rng: np.random.Generator,
        table: dict,
        kinds: Sequence[str],
        kind: np.ndarray,
        zh: np.ndarray,
    ) -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
        """Subject and body pools, and each row's index into them (by language and kind)."""
        subjects: list[str] = []
        bodies: list[str] = []
        s_start, s_len, b_start, b_len = [], [], [], []
        for lang in ("en", "zh"):
            for k in kinds:
                subj, body = table[lang][k]
                s_start.append(len(subjects))
                s_len.append(len(subj))
                b_start.append(len(bodies))
                b_len.append(len(body))
                subjects += subj
                bodies += body
        key = zh.astype(np.int64) * len(kinds) + kind
        s = np.array(s_start)[key] + (rng.random(len(key)) * np.array(s_len)[key]).astype(int)
        t = np.array(b_start)[key] + (rng.random(len(key)) * np.array(b_len)[key]).astype(int)
        return subjects, s, bodies, t

    def _staff(self, rng: np.random.Generator, parent: np.ndarray, own: float) -> np.ndarray:
        owner = self.a["owner"][parent]
        other = self.b._sales_of(rng, self.a["team"][parent])
        return np.where((owner > 0) & (rng.random(len(parent)) < own), owner, other)

    def _amount(self, rng: np.random.Generator, parent: np.ndarray, scale: float) -> np.ndarray:
        base = _AMOUNT_MEDIAN[self.currency[parent]] * _TIER_FACTOR[self.a["tier"][parent]]
        base = base * np.where(self.company[parent], 4.0, 1.0) * scale
        x = base * rng.lognormal(0.0, 0.8, len(parent))
        whole = rng.random(len(parent)) < 0.4
        return _money(np.where(whole, np.round(x, -1), x))

    def interactions(self) -> pd.DataFrame:
        rng = self.b.rng["interactions"]
        lam = np.array([1.2, 2.5, 3.5, 6.0, 2.0, 2.5])[self.a["stage"]]
        parent = self._spawn(rng, lam * np.where(self.company, 1.3, 1.0))
        zh = self.zh[parent]
        kinds = ("call", "email", "meeting", "visit", "chat", "note")
        kind = np.where(
            zh,
            _choice(rng, len(parent), [0.27, 0.15, 0.1, 0.1, 0.28, 0.1]),
            _choice(rng, len(parent), [0.3, 0.33, 0.12, 0.05, 0.1, 0.1]),
        )
        subjects, subject, bodies, body = self._subject_body(
            rng, _INTERACTION_TEXT, kinds, kind, zh
        )
        when = self._when(rng, parent)
        user = self._staff(rng, parent, 0.8)
        support = (kind >= 4) & (rng.random(len(parent)) < 0.15)
        user = np.where(
            support,
            self.b.support_ids[rng.integers(0, len(self.b.support_ids), len(parent))],
            user,
        )
        order = np.argsort(when, kind="stable")
        return _frame(
            "interactions",
            {
                "id": np.arange(1, len(parent) + 1),
                "customer_id": self.a["id"][parent][order],
                "user_id": user[order],
                "kind": _pooled(kinds, kind[order]),
                "subject": _pooled(subjects, subject[order]),
                "body": _pooled(bodies, body[order]),
                "occurred_at": _ts(when[order]),
            },
        )

    def deals(self) -> pd.DataFrame:
        rng = self.b.rng["deals"]
        stage = self.a["stage"]
        lam = np.array([0.3, 1.0, 1.2, 2.5, 0.8, 1.0])[stage]
        parent = self._spawn(rng, lam)
        k = len(parent)
        created = self._when(rng, parent)
        cstage = stage[parent]
        age = (self.b.end - created) / DAY
        u = rng.random(k)
        # status: 0 open, 1 won, 2 lost
        status = np.where(
            age < 120,
            np.where(u < 0.7, 0, np.where(u < 0.85, 1, 2)),
            np.where(u < 0.15, 0, np.where(u < 0.6, 1, 2)),
        )
        status = np.where((cstage <= 1) & (status == 1), np.where(u < 0.5, 0, 2), status)
        status = np.where((cstage == 0) & (status == 2) & (age < 120), 0, status)
        open_stage = _choice(rng, k, [0.3, 0.3, 0.25, 0.15])
        open_stage = np.where(cstage == 0, np.minimum(open_stage, 1), open_stage)
        stage_ix = np.where(status == 0, open_stage, np.where(status == 1, 4, 5))
        closed = np.minimum(
            created + (rng.gamma(2.0, 20.0, k) * DAY).astype(np.int64) + 3600, self.b.end - 1
        )
        expected = (created + (rng.uniform(20, 120, k) * DAY).astype(np.int64)) // DAY
        expected = np.where(status == 0, expected, closed // DAY + rng.integers(-20, 15, k))
        product = _choice(rng, k, _PRODUCT_P)
        zh = self.zh[parent]
        titles = (*_DEAL_TITLES["en"], *_DEAL_TITLES["zh"])
        title = product + zh * len(_DEAL_TITLES["en"])
        lost = _choice(rng, k, [0.3, 0.25, 0.15, 0.12, 0.1, 0.08])
        owner = np.where(
            self.a["owner"][parent] > 0, self.a["owner"][parent], self._staff(rng, parent, 0.0)
        )
        order = np.argsort(created, kind="stable")
        return _frame(
            "deals",
            {
                "id": np.arange(1, k + 1),
                "customer_id": self.a["id"][parent][order],
                "owner_id": _nullable(owner[order]),
                "title": _pooled(titles, title[order]),
                "stage": _pooled(_DEAL_STAGES, stage_ix[order]),
                "status": _pooled(("open", "won", "lost"), status[order]),
                "amount": self._amount(rng, parent, 12.0)[order],
                "currency": _pooled(_CURRENCIES, self.currency[parent][order]),
                "created_at": _ts(created[order]),
                "expected_close": _dates(expected[order]),
                "closed_at": _ts(closed[order], (status != 0)[order]),
                "lost_reason": _pooled(_LOST_REASONS, lost[order], (status == 2)[order]),
            },
        )

    def orders(self) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """Orders, their payments and the loyalty ledger they feed."""
        rng = self.b.rng["orders"]
        stage = self.a["stage"]
        weight = np.array([0.0, 0.0, 1.0, 3.0, 0.8, 0.7])[stage] * np.where(self.company, 1.5, 1)
        weight = weight * np.where(self.a["is_dup"], 0.5, 1.0)
        total_w = weight.sum()
        scale = self.orders_per_customer * self.n / total_w if total_w else 0.0
        parent = np.repeat(np.arange(self.n), rng.poisson(weight * scale))
        k = len(parent)
        when = self._when(rng, parent)
        order = np.argsort(when, kind="stable")
        parent, when = parent[order], when[order]
        ids = np.arange(1, k + 1)
        total = self._amount(rng, parent, 1.0)
        age = (self.b.end - when) / DAY
        u = rng.random(k)
        status = np.where(
            age < 14,
            np.where(u < 0.3, 0, np.where(u < 0.6, 1, np.where(u < 0.9, 2, 4))),
            np.where(u < 0.88, 3, np.where(u < 0.94, 4, np.where(u < 0.98, 5, 2))),
        )
        number = _numbered("SO-", _year(when), ids, 7)
        zh = self.zh[parent]
        currency = self.currency[parent]
        orders = _frame(
            "orders",
            {
                "id": ids,
                "customer_id": self.a["id"][parent],
                "number": number,
                "ordered_at": _ts(when),
                "total": total,
                "currency": _pooled(_CURRENCIES, currency),
                "status": _pooled(_ORDER_STATUSES, status),
                "product_line": _pooled(_PRODUCT_LINES, _choice(rng, k, _PRODUCT_P)),
                "channel": _pooled(_CHANNELS, _choice(rng, k, _CHANNEL_P)),
            },
        )
        payments = self._payments(rng, ids, when, total, status, zh)
        loyalty = self._loyalty(rng, parent, when, total, status, currency)
        return orders, payments, loyalty

    def _payments(
        self,
        rng: np.random.Generator,
        ids: np.ndarray,
        when: np.ndarray,
        total: np.ndarray,
        status: np.ndarray,
        zh: np.ndarray,
    ) -> pd.DataFrame:
        k = len(ids)
        end = self.b.end
        paid = (status >= 1) & (status != 4)
        deposit = (status == 0) & (rng.random(k) < 0.3)
        split = paid & (rng.random(k) < 0.15)
        first_at = np.minimum(when + (rng.exponential(2.0, k) * DAY).astype(np.int64) + 60, end - 1)
        second_at = first_at + (rng.uniform(20, 40, k) * DAY).astype(np.int64)
        split &= second_at < end
        first_amt = np.where(split | deposit, _money(total * rng.choice([0.3, 0.5], k)), total)
        methods = (*[m for m, _ in _METHODS["en"]], *[m for m, _ in _METHODS["zh"]])
        method = np.where(
            zh,
            _choice(rng, k, [w for _, w in _METHODS["zh"]]) + len(_METHODS["en"]),
            _choice(rng, k, [w for _, w in _METHODS["en"]]),
        )
        refund_at = np.minimum(first_at + (rng.uniform(3, 30, k) * DAY).astype(np.int64), end - 1)
        parts = [
            (paid | deposit, ids, first_at, first_amt),
            (split, ids, second_at, _money(total - first_amt)),
            (status == 5, ids, refund_at, -total),
        ]
        mask = [p[0] for p in parts]
        order_id = np.concatenate([p[1][m] for p, m in zip(parts, mask, strict=True)])
        at = np.concatenate([p[2][m] for p, m in zip(parts, mask, strict=True)])
        amount = np.concatenate([p[3][m] for p, m in zip(parts, mask, strict=True)])
        method = np.concatenate([method[m] for m in mask])
        order = np.argsort(at, kind="stable")
        return _frame(
            "payments",
            {
                "id": np.arange(1, len(order) + 1),
                "order_id": order_id[order],
                "paid_at": _ts(at[order]),
                "amount": amount[order],
                "method": _pooled(methods, method[order]),
            },
        )

    def _loyalty(
        self,
        rng: np.random.Generator,
        parent: np.ndarray,
        when: np.ndarray,
        total: np.ndarray,
        status: np.ndarray,
        currency: np.ndarray,
    ) -> pd.DataFrame:
        earn = np.isin(status, (1, 2, 3))
        rate = np.where(currency == 0, 10.0, 1.0)
        points = np.floor(total / rate).astype(np.int64)
        earn &= points > 0
        e_parent, e_at, e_points = parent[earn], when[earn] + 600, points[earn]
        # a redemption spends part of one earlier earning, so balances never go negative
        redeem = rng.random(len(e_parent)) < 0.25
        r_at = e_at[redeem] + (rng.uniform(5, 200, int(redeem.sum())) * DAY).astype(np.int64)
        keep = r_at < self.b.end
        r_parent = e_parent[redeem][keep]
        r_points = -np.maximum(
            1, (e_points[redeem][keep] * rng.uniform(0.3, 1.0, int(keep.sum()))).astype(np.int64)
        )
        r_at = r_at[keep]
        # sign-up bonus for some persons
        bonus = (self.a["kind"] == "person") & (self.a["stage"] >= 2) & (rng.random(self.n) < 0.3)
        b_parent = np.flatnonzero(bonus)
        b_at = self.a["created"][b_parent] + 120
        b_points = np.where(self.currency[b_parent] == 0, 200, 50)
        cust = np.concatenate([e_parent, r_parent, b_parent])
        at = np.minimum(np.concatenate([e_at, r_at, b_at]), self.b.end - 1)
        pts = np.concatenate([e_points, r_points, b_points])
        reason = np.repeat([0, 1, 2], [len(e_parent), len(r_parent), len(b_parent)])
        order = np.argsort(at, kind="stable")
        return _frame(
            "loyalty",
            {
                "id": np.arange(1, len(order) + 1),
                "customer_id": self.a["id"][cust][order],
                "points": pts[order],
                "reason": _pooled(("purchase", "redemption", "signup_bonus"), reason[order]),
                "occurred_at": _ts(at[order]),
            },
        )

    def contracts(self) -> pd.DataFrame:
        rng = self.b.rng["contracts"]
        stage = self.a["stage"]
        p = np.where(self.company, 0.6, np.where(stage == 3, 0.3, 0.0))
        p = np.where((stage >= 2) & (self.a["tier"] == 0), np.maximum(p, 0.2), p)
        p = np.where(stage <= 1, p * 0.1, p)
        has = rng.random(self.n) < p * np.where(self.a["is_dup"], 0.3, 1.0)
        count = np.where(has, 1 + rng.poisson(0.4, self.n), 0)
        parent = np.repeat(np.arange(self.n), count)
        k = len(parent)
        start = self._when(rng, parent) // DAY
        months = np.array([12, 24, 36])[_choice(rng, k, [0.6, 0.25, 0.15])]
        end = start + np.round(months * 30.4375).astype(np.int64) - 1
        today = self.b.end_day
        u = rng.random(k)
        status = np.where(end < today, np.where(u < 0.92, 2, 3), np.where(u < 0.95, 1, 3))
        status = np.where((start > today - 20) & (u < 0.3), 0, status)
        zh = self.zh[parent]
        title_ix = rng.integers(0, 5, k)
        titles = (*_CONTRACT_TITLES["en"], *_CONTRACT_TITLES["zh"])
        title = title_ix + zh * len(_CONTRACT_TITLES["en"])
        order = np.argsort(start, kind="stable")
        ids = np.arange(1, k + 1)
        prefix = np.where(zh[order], "HT-", "CT-")
        number = _numbered(prefix, _year(start[order] * DAY), ids, 6)
        return _frame(
            "contracts",
            {
                "id": ids,
                "customer_id": self.a["id"][parent][order],
                "number": number,
                "title": _pooled(titles, title[order]),
                "start_date": _dates(start[order]),
                "end_date": _dates(end[order]),
                "value": self._amount(rng, parent, 25.0)[order],
                "currency": _pooled(_CURRENCIES, self.currency[parent][order]),
                "status": _pooled(("draft", "active", "expired", "terminated"), status[order]),
            },
        )

    def tickets(self) -> pd.DataFrame:
        rng = self.b.rng["tickets"]
        stage = self.a["stage"]
        parent = self._spawn(rng, np.array([0.05, 0.1, 0.5, 1.0, 0.3, 0.8])[stage])
        k = len(parent)
        churned = stage[parent] == 5
        kind = np.where(
            churned, _choice(rng, k, [0.15, 0.55, 0.3]), _choice(rng, k, [0.3, 0.22, 0.48])
        )
        zh = self.zh[parent]
        kinds = ("feedback", "complaint", "request")
        subjects, subject, bodies, body = self._subject_body(rng, _TICKET_TEXT, kinds, kind, zh)
        created = self._when(rng, parent)
        priority = _choice(rng, k, [0.25, 0.5, 0.18, 0.07])
        priority = np.where((kind == 1) & (priority == 0), 1, priority)
        sla_hours = np.array([168, 72, 24, 4])[priority]
        due = created + sla_hours * 3600
        age = (self.b.end - created) / DAY
        u = rng.random(k)
        # status: 0 open, 1 pending, 2 resolved, 3 closed
        status = np.where(
            age > 30,
            np.where(u < 0.75, 3, np.where(u < 0.95, 2, 1)),
            np.where(u < 0.4, 0, np.where(u < 0.65, 1, np.where(u < 0.85, 2, 3))),
        )
        took = (rng.gamma(1.5, 1.0, k) * sla_hours * 3600).astype(np.int64) + 600
        resolved = np.minimum(created + took, self.b.end - 1)
        done = status >= 2
        late = resolved > due
        base = np.where(kind == 1, 2.6, 4.1) - np.where(late, 0.8, 0.0)
        sat = np.clip(np.round(base + rng.normal(0, 0.9, k)), 1, 5).astype(np.int64)
        sat = np.where((status == 3) & (rng.random(k) < 0.8), sat, 0)
        assignee = self.b.support_ids[rng.integers(0, len(self.b.support_ids), k)]
        assignee = np.where((status == 0) & (rng.random(k) < 0.3), 0, assignee)
        order = np.argsort(created, kind="stable")
        return _frame(
            "tickets",
            {
                "id": np.arange(1, k + 1),
                "customer_id": self.a["id"][parent][order],
                "kind": _pooled(kinds, kind[order]),
                "subject": _pooled(subjects, subject[order]),
                "body": _pooled(bodies, body[order]),
                "status": _pooled(("open", "pending", "resolved", "closed"), status[order]),
                "priority": _pooled(("low", "normal", "high", "urgent"), priority[order]),
                "assignee_id": _nullable(assignee[order]),
                "created_at": _ts(created[order]),
                "due_at": _ts(due[order]),
                "resolved_at": _ts(resolved[order], done[order]),
                "satisfaction": _nullable(sat[order]),
            },
        )

    def tasks(self) -> pd.DataFrame:
        rng = self.b.rng["tasks"]
        stage = self.a["stage"]
        parent = self._spawn(rng, np.array([0.6, 0.8, 0.4, 0.8, 0.15, 0.1])[stage])
        k = len(parent)
        lo = self.a["created"][parent]
        hi = np.minimum(self.act_end[parent] + 30 * DAY, self.b.end + 45 * DAY)
        due = _office_hours(rng, _uniform_time(rng, lo, hi), self.a["tz"][parent], lo, hi)
        before = due < self.b.end - 7 * DAY
        is_done = np.where(before, rng.random(k) < 0.85, rng.random(k) < 0.25)
        done_at = due + (rng.uniform(-4, 4, k) * DAY).astype(np.int64)
        done_at = np.minimum(np.maximum(done_at, lo + 600), self.b.end - 1)
        zh = self.zh[parent]
        t = rng.integers(0, 10, k)
        titles = (*_TASK_TITLES["en"], *_TASK_TITLES["zh"])
        title = t + zh * len(_TASK_TITLES["en"])
        assignee = self._staff(rng, parent, 0.85)
        order = np.argsort(due, kind="stable")
        return _frame(
            "tasks",
            {
                "id": np.arange(1, k + 1),
                "customer_id": self.a["id"][parent][order],
                "assignee_id": _nullable(assignee[order]),
                "title": _pooled(titles, title[order]),
                "due_at": _ts(due[order]),
                "done_at": _ts(done_at[order], is_done[order]),
            },
        )


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def generate(
    n_customers: int,
    *,
    seed: int = 42,
    duplicate_rate: float = 0.08,
    orders_per_customer: float = 2.0,
    history: bool = True,
    end: date = date(2026, 11, 1),
    years: int = 4,
) -> DemoData:
    """Generate ``n_customers`` customer rows (planted duplicates included) and their history.

    ``duplicate_rate`` of the original records get one or two near-duplicate copies;
    ``truth_cluster`` (the id of the original) links each copy to its original. History spans
    ``years`` before ``end`` (exclusive, midnight UTC); ``history=False`` leaves the child frames
    empty. The result depends only on the arguments.
    """
    if n_customers < 0:
        raise ValueError("n_customers must not be negative")
    if not 0 <= duplicate_rate < 1:
        raise ValueError("duplicate_rate must be in [0, 1)")
    if years < 1:
        raise ValueError("years must be at least 1")
    b = _Builder(seed=seed, end=end, years=years)
    teams, users = b.users()
    customers, arrays = _customers(b, n_customers, duplicate_rate)
    names = (
        "interactions",
        "deals",
        "orders",
        "payments",
        "contracts",
        "tickets",
        "tasks",
        "loyalty",
    )
    children = {name: _empty(name) for name in names}
    if history and n_customers:
        h = _History(b, arrays, orders_per_customer)
        children["interactions"] = h.interactions()
        children["deals"] = h.deals()
        children["orders"], children["payments"], children["loyalty"] = h.orders()
        children["contracts"] = h.contracts()
        children["tickets"] = h.tickets()
        children["tasks"] = h.tasks()
    return DemoData(teams=teams, users=users, customers=customers, **children)


def write_sample(data: DemoData, folder: Path) -> None:
    """Write one UTF-8 CSV per frame (``customers.csv``, ``orders.csv``, ...) into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in data.frames().items():
        frame.to_csv(folder / f"{name}.csv", index=False, encoding="utf-8", lineterminator="\n")


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``python -m crm_core.datagen --customers 500 --seed 7 --out DIR``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=500)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--duplicate-rate", type=float, default=0.08)
    parser.add_argument("--orders-per-customer", type=float, default=2.0)
    parser.add_argument("--no-history", action="store_true", help="customers, users, teams only")
    parser.add_argument("--end", type=date.fromisoformat, default=date(2026, 11, 1))
    parser.add_argument("--years", type=int, default=4)
    parser.add_argument("--out", type=Path, help="folder for the CSVs (omit to only time)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    data = generate(
        args.customers,
        seed=args.seed,
        duplicate_rate=args.duplicate_rate,
        orders_per_customer=args.orders_per_customer,
        history=not args.no_history,
        end=args.end,
        years=args.years,
    )
    took = time.perf_counter() - started
    rows = ", ".join(f"{k}={len(v):,}" for k, v in data.frames().items())
    print(f"generated in {took:.1f}s: {rows}")
    if args.out:
        write_sample(data, args.out)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
