"""The shared page frame and the page registry.

A page is a function decorated with ``@panel_page`` that receives a ``PageContext`` (the user,
their language, and ``ctx.run`` to call a service) plus its path parameters. ``mount`` turns
the specs into NiceGUI pages wrapped in the frame: header with the role-filtered menu, the
language switch and log-out. Pages the user's role may not use answer 403 on the server.
"""

from __future__ import annotations

import html
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import Request
from nicegui import app as nicegui_app
from nicegui import ui
from starlette.responses import HTMLResponse, RedirectResponse, Response

from app import fmt
from app.security import LOGIN_PATH, TOKEN_KEY, PanelUser, resolve_user, session_token
from crm_core import access, sessions, users
from crm_core.db import get_database
from crm_core.errors import ConflictError, CrmError, InvalidInput
from crm_core.i18n import normalize_locale, translator
from crm_core.models import User

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

T = TypeVar("T")
DOMAIN = "panel"


@dataclass(frozen=True)
class PageSpec:
    """What ``mount`` needs to serve a page and show it in the menu."""

    path: str
    title: str
    builder: Callable[..., Any]
    icon: str = ""
    permission: str | None = None
    menu: bool = True
    public: bool = False
    group: str = ""


def panel_page(
    path: str,
    *,
    title: str,
    icon: str = "",
    permission: str | None = "customer.read",
    menu: bool = True,
    public: bool = False,
    group: str = "",
) -> Callable[[Callable[..., Any]], PageSpec]:
    """Describe a page; ``app.main`` mounts it. ``permission`` is a role permission of
    ``crm_core.access`` that the server checks before building the page."""

    def decorate(builder: Callable[..., Any]) -> PageSpec:
        return PageSpec(path, title, builder, icon, permission, menu, public, group)

    return decorate


class SessionGone(Exception):
    """The log-in session ended (idle, expired, logged out elsewhere)."""


@dataclass
class PageContext:
    """Everything a page body needs: who is acting, in which language, and service calls."""

    user: PanelUser
    locale: str
    menu: list[PageSpec] = field(default_factory=list)
    path: str = ""

    def _(self, message: str, **kwargs: object) -> str:
        return translator(self.locale, DOMAIN)(message, **kwargs)

    def can(self, permission: str) -> bool:
        return access.can(self.user, permission)

    # ---- display helpers in the user's locale
    def dt(self, value: Any) -> str:
        return fmt.fmt_datetime(value, self.locale)

    def date(self, value: Any) -> str:
        return fmt.fmt_date(value, self.locale)

    def money(self, value: Any, currency: str) -> str:
        return fmt.fmt_money(value, currency, self.locale)

    def number(self, value: Any) -> str:
        return fmt.fmt_number(value, self.locale)

    def error_text(self, exc: CrmError) -> str:
        """A service error in the user's language (catalogue entry or the English text)."""
        return self._(exc.message)

    def run(
        self,
        fn: Callable[[Session, User], T],
        *,
        ok: str | None = None,
        on_invalid: Callable[[InvalidInput], None] | None = None,
        on_conflict: Callable[[ConflictError], None] | None = None,
        notify_errors: bool = True,
    ) -> T | None:
        """Call ``fn(session, actor)`` in one transaction after re-checking the session.

        Returns ``fn``'s result, or ``None`` when it failed: the error is shown to the user
        (beside the fields through ``on_invalid``, as a conflict through ``on_conflict``).
        An ended session sends the user to the log-in page.
        """
        token = session_token()
        if resolve_user(token) is None:
            ui.notify(self._("Your session has ended. Please log in again."), type="warning")
            ui.navigate.to(LOGIN_PATH)
            return None
        try:
            with get_database().transaction() as session:
                actor = session.get(User, self.user.id)
                assert actor is not None
                result = fn(session, actor)
        except InvalidInput as exc:
            if on_invalid is not None:
                on_invalid(exc)
            if notify_errors:
                ui.notify(self.error_text(exc), type="negative", multi_line=True)
            return None
        except ConflictError as exc:
            if on_conflict is not None:
                on_conflict(exc)
            elif notify_errors:
                ui.notify(self.error_text(exc), type="negative", multi_line=True)
            return None
        except CrmError as exc:
            if notify_errors:
                ui.notify(self.error_text(exc), type="negative", multi_line=True)
            return None
        if ok:
            ui.notify(ok, type="positive")
        return result


def logout() -> None:
    """End the session on the server and forget it in the browser."""
    token = session_token()
    with get_database().transaction() as session:
        sessions.end_session(session, token=token)
    nicegui_app.storage.user.pop(TOKEN_KEY, None)
    ui.navigate.to(LOGIN_PATH)


def _set_language(ctx: PageContext, locale: str) -> None:
    if locale == ctx.locale:
        return
    done = ctx.run(lambda s, actor: users.set_locale(s, actor=actor, locale=locale))
    if done is not None:
        ui.navigate.reload()


PANEL_CSS = """
.crm-main { width: 100%; max-width: 1400px; margin: 0 auto; }
.crm-card { width: 100%; }
@media (max-width: 600px) { .crm-hide-phone { display: none !important; } }
"""


@contextmanager
def frame(ctx: PageContext, title: str) -> Iterator[None]:
    """Header with menu, language switch and log-out; the page body goes inside."""
    _ = ctx._
    ui.add_css(PANEL_CSS)
    ui.page_title(f"{_(title)} · CRM")
    with ui.header(elevated=True).classes("items-center gap-2 px-3 py-1 bg-primary"):
        menu_button = ui.button(icon="menu").props("flat round color=white").mark("menu-button")
        ui.label("CRM").classes("text-lg font-bold text-white")
        ui.label(_(title)).classes("text-white crm-hide-phone").mark("page-title")
        ui.space()
        ui.select(
            {"en": "EN", "zh": "中文"},
            value=ctx.locale,
            on_change=lambda e: _set_language(ctx, e.value),
        ).props("dense borderless dark options-dense").classes("text-white").mark("language")
        from app.pages.automation import bell

        bell(ctx)
        ui.label(ctx.user.display_name).classes("text-white crm-hide-phone").mark("current-user")
        ui.button(icon="logout", on_click=logout).props("flat round color=white").tooltip(
            _("Log out")
        ).mark("logout")
    with (
        ui.left_drawer(value=False, fixed=True)
        .classes("bg-grey-1")
        .props("width=220 breakpoint=900 overlay") as drawer
    ):
        group = None
        for spec in ctx.menu:
            if spec.group and spec.group != group:
                ui.label(_(spec.group)).classes("text-xs text-grey-7 mt-3 ml-2")
            group = spec.group
            link = ui.link(_(spec.title), spec.path).classes(
                "block px-3 py-2 no-underline text-grey-9 rounded hover:bg-grey-3"
                + (" bg-blue-1 font-bold" if spec.path == ctx.path else "")
            )
            link.mark(f"menu-{spec.path.strip('/').replace('/', '-')}")
    menu_button.on("click", drawer.toggle)
    with ui.column().classes("crm-main p-2 sm:p-4 gap-3"):
        yield


def _visible_menu(user: PanelUser, specs: list[PageSpec]) -> list[PageSpec]:
    return [
        s
        for s in specs
        if s.menu and not s.public and (s.permission is None or access.can(user, s.permission))
    ]


def forbidden(user: PanelUser, title: str) -> Response:
    _ = translator(user.locale, DOMAIN)
    body = html.escape(_("Your role may not use this page."))
    page = html.escape(_(title))
    return HTMLResponse(
        f"<!doctype html><title>403</title><h1>403 · {page}</h1><p>{body}</p>"
        f'<p><a href="/customers">{html.escape(_("Back to customers"))}</a></p>',
        status_code=403,
    )


def _wrap(spec: PageSpec, all_specs: list[PageSpec]) -> Callable[..., Any]:
    params = list(inspect.signature(spec.builder, eval_str=True).parameters.values())[1:]

    async def handler(request: Request, **kwargs: Any) -> Response | None:
        if spec.public:
            result = spec.builder(request, **kwargs)
            if inspect.isawaitable(result):
                result = await result
            return result
        user: PanelUser | None = getattr(request.state, "panel_user", None)
        if user is None:  # the gate lets no such request through; refuse all the same
            return RedirectResponse(LOGIN_PATH, status_code=303)
        if spec.permission is not None and not access.can(user, spec.permission):
            return forbidden(user, spec.title)
        ctx = PageContext(
            user=user,
            locale=normalize_locale(user.locale),
            menu=_visible_menu(user, all_specs),
            path=spec.path,
        )
        with frame(ctx, spec.title):
            result = spec.builder(ctx, **kwargs)
            if inspect.isawaitable(result):
                await result
        return None

    handler.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter("request", inspect.Parameter.KEYWORD_ONLY, annotation=Request)]
        + [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in params]
    )
    handler.__name__ = spec.builder.__name__
    handler.__module__ = spec.builder.__module__
    return handler


def mount(*specs: PageSpec) -> None:
    """Register the pages with NiceGUI (the menu lists them in this order)."""
    all_specs = list(specs)
    for spec in all_specs:
        ui.page(spec.path, title=f"{spec.title} · CRM")(_wrap(spec, all_specs))


def field_error_label() -> ui.label:
    """A red label under a form field for the service's error message."""
    return ui.label("").classes("text-negative text-xs -mt-2").style("min-height: 0")
