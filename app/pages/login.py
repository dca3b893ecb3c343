"""Log-in page: the only page served without a session."""

from __future__ import annotations

from fastapi import Request
from nicegui import app as nicegui_app
from nicegui import ui
from starlette.responses import RedirectResponse, Response

from app.frame import panel_page
from app.security import TOKEN_KEY, resolve_user, safe_next, session_token
from crm_core import sessions
from crm_core.db import get_database
from crm_core.i18n import normalize_locale, translator


def _request_locale(request: Request) -> str:
    lang = request.query_params.get("lang") or request.headers.get("accept-language", "")
    return normalize_locale(lang.split(",")[0])


@panel_page("/login", title="Log in", public=True, menu=False, permission=None)
def login_page(request: Request) -> Response | None:
    target = safe_next(request.query_params.get("next"))
    if resolve_user(session_token()) is not None:
        return RedirectResponse(target, status_code=303)
    locale = _request_locale(request)
    _ = translator(locale, "panel")
    address = request.client.host if request.client else None
    user_agent = request.headers.get("user-agent", "")[:255]
    ui.page_title(f"{_('Log in')} · CRM")

    def attempt() -> None:
        with get_database().transaction() as session:
            outcome = sessions.login(
                session,
                username=username.value or "",
                password=password.value or "",
                address=address,
                user_agent=user_agent,
            )
        if outcome.ok and outcome.token:
            # the only write to user storage happens here, after a successful log-in
            nicegui_app.storage.user[TOKEN_KEY] = outcome.token
            ui.navigate.to(target)
            return
        password.value = ""
        if outcome.reason == "throttled":
            message.text = _("Too many failed attempts. Try again in {seconds} s.").format(
                seconds=outcome.retry_after
            )
        else:
            message.text = _("Wrong username or password.")
        message.set_visibility(True)

    with (
        ui.column().classes("absolute-center w-full items-center px-4"),
        ui.card().classes("w-full max-w-sm gap-3"),
    ):
        ui.label("CRM").classes("text-2xl font-bold")
        ui.label(_("Log in")).classes("text-lg")
        username = (
            ui.input(_("Username")).props("autocomplete=username autofocus").classes("w-full")
        )
        username.mark("username")
        password = ui.input(_("Password"), password=True).props("autocomplete=current-password")
        password.classes("w-full").mark("password")
        password.on("keydown.enter", attempt)
        message = ui.label("").classes("text-negative").mark("login-error")
        message.set_visibility(False)
        ui.button(_("Log in"), on_click=attempt).classes("w-full").mark("login-button")
        with ui.row().classes("gap-2 text-sm"):
            ui.link("English", "/login?lang=en").classes("text-grey-7")
            ui.link("中文", "/login?lang=zh").classes("text-grey-7")
    return None
