"""Deny-by-default routing, security headers and the Origin check of the socket handshake.

- ``AuthGate``: every HTTP request needs a live server-side session (``crm_core.sessions``)
  unless it is the log-in page or a static asset of NiceGUI. Pages get a redirect to
  ``/login``, anything else a 401. The resolved user is put on ``request.state.panel_user``.
- ``SecurityHeaders``: CSP (what NiceGUI, Quasar and AG Grid need, nothing more),
  ``X-Content-Type-Options``, ``frame-ancestors``/``X-Frame-Options``, ``Referrer-Policy``.
- ``install_origin_check``: the Socket.IO server refuses connections whose ``Origin`` is not
  one of the configured panel origins (NiceGUI accepts any origin by default).
- Unauthenticated requests never write ``app.storage.user``, so they create no storage files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import socketio
from nicegui import app as nicegui_app
from nicegui import core
from nicegui.version import __version__ as nicegui_version
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from crm_core import sessions
from crm_core.db import get_database

TOKEN_KEY = "crm_session"
LOGIN_PATH = "/login"
PUBLIC_PATHS = frozenset({LOGIN_PATH, "/favicon.ico"})
#: Versioned NiceGUI assets (JS, CSS, fonts, components) and the socket endpoint.
PUBLIC_PREFIXES = (f"/_nicegui/{nicegui_version}/", "/_nicegui_ws/")

CSP = "; ".join(
    [
        "default-src 'self'",
        # NiceGUI boots Vue from an inline script and compiles component templates at run time
        "script-src 'self' 'unsafe-inline' 'unsafe-eval'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}


@dataclass(frozen=True)
class PanelUser:
    """The logged-in user as the pages need it (a plain value, safe outside a DB session)."""

    id: int
    username: str
    display_name: str
    role: str
    team_id: int | None
    locale: str


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def session_token() -> str | None:
    """The session token of the current browser, without creating any storage."""
    try:
        value = nicegui_app.storage.user.get(TOKEN_KEY)
    except (AssertionError, RuntimeError, KeyError):
        return None
    return value if isinstance(value, str) else None


def resolve_user(token: str | None) -> PanelUser | None:
    """The live session's user (its idle clock reset), or ``None``."""
    if not token:
        return None
    with get_database().transaction() as session:
        user = sessions.resolve(session, token=token)
        if user is None:
            return None
        return PanelUser(
            user.id, user.username, user.display_name or user.username, user.role,
            user.team_id, user.locale or "en",
        )  # fmt: skip


def safe_next(target: str | None) -> str:
    """Only a local path may follow a log-in (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/customers"
    return target


class AuthGate(BaseHTTPMiddleware):
    """Refuse every route but the public ones unless the request carries a live session."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        path = request.url.path
        if is_public(path):
            return await call_next(request)
        user = resolve_user(session_token())
        if user is None:
            accepts_html = "text/html" in request.headers.get("accept", "")
            if request.method == "GET" and (accepts_html or not path.startswith("/_nicegui")):
                target = path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"{LOGIN_PATH}?next={quote(target)}", status_code=303)
            return JSONResponse({"detail": "log in first"}, status_code=401)
        request.state.panel_user = user
        return await call_next(request)


class SecurityHeaders(BaseHTTPMiddleware):
    """Set the security headers on every HTTP response."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        for key, value in HEADERS.items():
            response.headers.setdefault(key, value)
        if not is_public(request.url.path) or request.url.path == LOGIN_PATH:
            response.headers["Cache-Control"] = "no-store"
        return response


def allowed_origins(host: str, port: int) -> list[str]:
    """Origins the browser may open the socket from: the configured host and port (loopback
    names are interchangeable), plus ``CRM_ALLOWED_ORIGINS`` (comma-separated, for a proxy)."""
    hosts = {host}
    if host in ("127.0.0.1", "localhost", "0.0.0.0", "::1"):
        hosts = {"127.0.0.1", "localhost"}
    origins = {f"{scheme}://{h}:{port}" for h in hosts for scheme in ("http", "https")}
    extra = os.environ.get("CRM_ALLOWED_ORIGINS", "")
    origins |= {o.strip().rstrip("/") for o in extra.split(",") if o.strip()}
    return sorted(origins)


def install_origin_check(origins: list[str]) -> None:
    """Make the Socket.IO server refuse handshakes from any other origin."""
    sio = core.sio
    sio.eio.cors_allowed_origins = list(origins)
    handlers = sio.handlers.setdefault("/", {})
    original = handlers.get("connect")
    if getattr(original, "_crm_origin_checked", False):
        original = original._crm_original  # type: ignore[union-attr]

    async def checked_connect(sid: str, environ: dict[str, Any], auth: Any = None) -> Any:
        origin = environ.get("HTTP_ORIGIN")
        if origin is not None and origin.rstrip("/") not in origins:
            raise socketio.exceptions.ConnectionRefusedError("origin not allowed")
        if original is None:
            return None
        return await original(sid, environ, auth)

    checked_connect._crm_origin_checked = True  # type: ignore[attr-defined]
    checked_connect._crm_original = original  # type: ignore[attr-defined]
    handlers["connect"] = checked_connect


def install(host: str, port: int) -> None:
    """Add the middlewares and the origin check (call before ``ui.run``)."""
    nicegui_app.add_middleware(AuthGate)
    nicegui_app.add_middleware(SecurityHeaders)
    install_origin_check(allowed_origins(host, port))
