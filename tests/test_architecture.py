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
