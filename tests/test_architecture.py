"""crm_core stays free of UI packages: importing all of it loads no NiceGUI, ipywidgets or
IPython."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import crm_core

UI_PACKAGES = ("nicegui", "ipywidgets", "IPython")


def test_crm_core_imports_no_ui_package() -> None:
    modules = [
        m.name
        for m in pkgutil.walk_packages(crm_core.__path__, "crm_core.")
        if ".migrations" not in m.name and not m.name.endswith("__main__")
    ]
    assert "crm_core.customers" in modules and "crm_core.cli" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(','.join(p for p in {UI_PACKAGES!r} if p in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "", f"crm_core pulled in: {proc.stdout.strip()}"


def test_every_menu_title_has_a_chinese_translation() -> None:
    # in a separate process: importing the panel registers its pages with NiceGUI
    code = (
        "from app.main import PAGES\n"
        "from crm_core.i18n import translator\n"
        "zh = translator('zh', 'panel')\n"
        "titles = {t for spec in PAGES for t in (spec.title, spec.group) if t}\n"
        "print(sorted(t for t in titles if zh(t) == t))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]", f"untranslated menu titles: {proc.stdout.strip()}"
