"""The automation catalogue covers the automation pages and every built-in rule."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_file

from crm_core.automation.builtins import BUILTIN_RULES
from crm_core.automation.email import FAILED_TITLE
from crm_core.i18n import _catalog, translator

ROOT = Path(__file__).resolve().parent.parent


def _messages() -> set[str]:
    found = set()
    path = ROOT / "app" / "pages" / "automation.py"
    for _line, message, _c, _x in extract_from_file("python", str(path), keywords={"_": None}):
        text = message if isinstance(message, str) else message[0]
        if text not in ("name", "description", "trigger"):  # dictionary keys, not text
            found.add(text)
    for rule in BUILTIN_RULES.values():
        found |= {rule["name"], rule["description"]}
        found |= {a["title"] for a in rule["actions"] if a.get("title")}
    found.add(FAILED_TITLE)
    return found


def test_every_message_has_a_chinese_translation():
    catalogue = _catalog("zh", "automation")
    missing = sorted(m for m in _messages() if m not in catalogue)
    assert missing == []


def test_placeholders_survive_translation():
    _ = translator("zh", "automation")
    assert _("{count} record(s) would match now.", count=7) == "当前将匹配 7 条记录。"
    assert "{name}" in _("Birthday of {name} in 7 days")
