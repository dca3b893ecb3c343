"""Every text of the import wizard has its Chinese in the ``importing`` catalogue."""

from __future__ import annotations

import ast
from pathlib import Path

from crm_core.i18n import clear_cache, translator
from crm_core.importing.mapping import TARGETS

PAGE = Path(__file__).parents[1] / "app" / "pages" / "importing.py"


def test_wizard_texts_are_translated():
    clear_cache()
    _ = translator("zh", "importing")
    texts = {
        node.args[0].value
        for node in ast.walk(ast.parse(PAGE.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "_"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }
    texts |= set(TARGETS) | {"upsert", "create", "update", "same phone", "same e-mail"}
    missing = sorted(t for t in texts if _(t) == t)
    assert missing == []
    assert _("line {n}", n=3) == "第 3 行"
