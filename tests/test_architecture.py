"""crm_core stays free of UI packages: importing all of it loads no NiceGUI, ipywidgets or
IPython. Importing the bulk writer loads no Plotly (the reports package imports its modules
on first use)."""

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


def test_importing_bulk_loads_no_plotly_and_the_reports_names_still_resolve() -> None:
    code = (
        "import sys\n"
        "import crm_core.bulk\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'plotly'))\n"
        "from crm_core import reports\n"
        "from crm_core.reports import ReportFilter, churn_risk, figures\n"
        "from crm_core.reports.churn import churn_risk as churn_risk_itself\n"
        "assert churn_risk is churn_risk_itself and figures is reports.figures\n"
        "assert ReportFilter is reports.filters.ReportFilter\n"
        "assert all(getattr(reports, name) is not None for name in reports.__all__)\n"
        "print(reports.cohorts.__name__, 'plotly' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.split("\n")[:2] == ["[]", "crm_core.reports.cohorts True"], proc.stdout


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
