"""The web panel's entry point: it only wires pages, security and NiceGUI together.

Run it with ``crm serve`` (which calls ``run``) or ``python app/main.py``; NiceGUI's ``User``
test fixture runs this file as ``__main__``.

Adding a page takes one new module and one line here:

1. ``app/pages/<name>.py`` with a function decorated by ``app.frame.panel_page``::

       @panel_page("/reports", title="Reports", icon="insights", permission="reports.read")
       def reports_page(ctx: PageContext) -> None:
           frame_ = ctx.run(lambda s, actor: reports.revenue_by_month(s, actor=actor))
           ...

   ``ctx.run`` calls a ``crm_core`` service in one transaction as the logged-in user and shows
   its errors; the page itself holds no query and no rule. Path parameters come as keyword
   arguments (``def customer_page(ctx, customer_id: int)``). Translatable text goes through
   ``ctx._("...")`` with its Chinese in ``crm_core/locale/zh/LC_MESSAGES/panel.po``.
2. Add the spec to ``PAGES`` below, where it should appear in the menu.

Every page is refused unless the user is logged in and their role has the page's permission;
the menu shows only the pages the role may use.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file (NiceGUI's User fixture, ``python app/main.py``)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nicegui import ui
from starlette.responses import RedirectResponse

from app import security
from app.frame import PageSpec, mount
from app.pages import (
    admin,
    archive,
    automation,
    customer,
    customers,
    dashboard,
    dedupe,
    importing,
    login,
    modules,
    pipeline,
    reports_builder,
    tasks,
    tickets,
)
from crm_core.settings import get_settings

PAGES: tuple[PageSpec, ...] = (
    login.login_page,
    customers.customers_page,
    customer.customer_page,
    archive.archive_page,
    pipeline.pipeline_page,
    tickets.tickets_page,
    tasks.tasks_page,
    dashboard.dashboard_page,
    *admin.PAGES,
    *automation.PAGES,
    *importing.PAGES,
    *dedupe.PAGES,
    *modules.PAGES,
    *reports_builder.PAGES,
)


def setup(host: str, port: int) -> None:
    """Register the pages, the root redirect and the security layer."""
    security.install(host, port)
    mount(*PAGES)
    automation.install_scheduler()

    @ui.page("/")
    def _root() -> RedirectResponse:
        return RedirectResponse("/customers", status_code=303)


def run(host: str = "127.0.0.1", port: int = 8080) -> None:
    """Serve the panel (blocking)."""
    setup(host, port)
    ui.run(
        host=host,
        port=port,
        title="CRM",
        show=False,
        reload=False,
        storage_secret=get_settings().storage_secret(),
        show_welcome_message=True,
        favicon="📇",
    )


if __name__ in {"__main__", "__mp_main__"}:
    _settings = get_settings()
    run(_settings.host, _settings.port)
