"""Exports of reports: a self-contained HTML page, an Excel workbook, a PNG of one figure."""

from __future__ import annotations

import html
import io
import logging
import shutil
from collections.abc import Sequence
from datetime import datetime

import pandas as pd
import plotly.graph_objects as go
from sqlalchemy.orm import Session

from crm_core import audit
from crm_core.access import Actor, require
from crm_core.errors import CrmError, InvalidInput
from crm_core.i18n import translator
from crm_core.models import utcnow
from crm_core.reports.dashboard import ReportResult, build_dashboard
from crm_core.reports.filters import ReportFilter

FORMATS = ("html", "xlsx")


class ExportUnavailable(CrmError):
    """A static image cannot be made on this machine (no Chrome/Chromium for kaleido)."""

    status = 503


def _plain(df: pd.DataFrame) -> pd.DataFrame:
    """A copy Excel can hold: time zones dropped (times are UTC), extension types as objects."""
    out = df.copy()
    for column in out.columns:
        series = out[column]
        if isinstance(series.dtype, pd.DatetimeTZDtype):
            out[column] = series.dt.tz_convert("UTC").dt.tz_localize(None)
        elif series.dtype == object and any(isinstance(v, datetime) for v in series.dropna()):
            out[column] = [
                v.replace(tzinfo=None) if isinstance(v, datetime) and v.tzinfo else v
                for v in series
            ]
    return out


def to_html(
    results: Sequence[ReportResult],
    *,
    title: str,
    locale: str | None = "en",
    filters: ReportFilter | None = None,
) -> str:
    """One self-contained HTML page (plotly.js embedded, works offline): each figure with its
    data table below it."""
    _ = translator(locale, "reports")
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="{"zh-CN" if (locale or "").startswith("zh") else "en"}"><head>',
        '<meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2em}"
        "table{border-collapse:collapse;font-size:12px;margin-bottom:3em}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}</style>",
        "</head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{html.escape(_('Generated'))}: {utcnow():%Y-%m-%d %H:%M} UTC</p>",
    ]
    if filters is not None:
        shown = {k: v for k, v in vars(filters).items() if v not in (None, "", True)}
        if shown:
            text = ", ".join(f"{k}={v}" for k, v in shown.items())
            parts.append(f"<p>{html.escape(_('Filters'))}: {html.escape(text)}</p>")
    for i, result in enumerate(results):
        parts.append(f"<h2>{html.escape(result.title)}</h2>")
        parts.append(
            result.figure.to_html(full_html=False, include_plotlyjs=(i == 0), default_width="100%")
        )
        parts.append(result.frame.to_html(index=False, na_rep="", escape=True, max_rows=500))
    parts.append("</body></html>")
    return "\n".join(parts)


def to_xlsx(results: Sequence[ReportResult]) -> bytes:
    """An Excel workbook with one sheet per report frame."""
    buffer = io.BytesIO()
    used: set[str] = set()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        for result in results:
            name = result.key[:31]
            n = 2
            while name in used:
                name = f"{result.key[:28]}_{n}"
                n += 1
            used.add(name)
            _plain(result.frame).to_excel(writer, sheet_name=name, index=False)
    return buffer.getvalue()


def chrome_path() -> str | None:
    """The Chrome or Chromium that kaleido would use, if any is on PATH."""
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


_PIPE_LOGGER = "choreographer.channels.pipe"


class _BrowserGoodbyeFilter(logging.Filter):
    """Logs choreographer's "JSONError decoding message. Ignoring" as a warning, not an error.

    When kaleido closes its Chromium, the browser writes ``{bye}`` down the pipe; if that lands
    in the same read as a last reply, choreographer fails to parse it, logs the failure at
    ERROR level with a traceback, ignores it, and the image is still made. Nothing went wrong
    for the caller, and an ERROR there reads as a failed export in logs and fails test suites
    that treat any ERROR record as a fault (NiceGUI's test fixtures do)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR and record.getMessage().startswith(
            "JSONError decoding message"
        ):
            record.levelno = logging.WARNING
            record.levelname = logging.getLevelName(logging.WARNING)
            record.exc_info = None
            record.exc_text = None
        return True


def quiet_browser_goodbye() -> None:
    """Install :class:`_BrowserGoodbyeFilter` on choreographer's pipe logger (once)."""
    logger = logging.getLogger(_PIPE_LOGGER)
    if not any(isinstance(f, _BrowserGoodbyeFilter) for f in logger.filters):
        logger.addFilter(_BrowserGoodbyeFilter())


def to_png(figure: go.Figure, *, width: int = 1000, height: int = 560, scale: float = 1.0) -> bytes:
    """A PNG of one figure through kaleido (needs Chrome or Debian's ``chromium`` installed)."""
    try:
        import kaleido  # noqa: F401
    except ImportError:
        raise ExportUnavailable(
            "PNG export needs the 'kaleido' package: pip install kaleido"
        ) from None
    if chrome_path() is None:
        raise ExportUnavailable(
            "PNG export needs Chromium: install it (Debian: apt-get install chromium)"
        )
    quiet_browser_goodbye()
    try:
        return figure.to_image(format="png", width=width, height=height, scale=scale)
    except Exception as exc:  # kaleido reports a missing or broken browser in many ways
        raise ExportUnavailable(f"PNG export failed: {exc}") from exc


def export_report(
    session: Session,
    *,
    actor: Actor,
    fmt: str,
    keys: Sequence[str] | None = None,
    filters: ReportFilter | None = None,
    locale: str | None = "en",
    now: datetime | None = None,
    title: str | None = None,
) -> bytes:
    """Compute reports for the actor and export them as ``html`` or ``xlsx``; the export is
    written to the audit trail (the caller commits)."""
    require(actor, "export.run")
    if fmt not in FORMATS:
        raise InvalidInput(f"must be one of {', '.join(FORMATS)}", field="format")
    kwargs = {"keys": tuple(keys)} if keys else {}
    results = build_dashboard(
        session, actor=actor, filters=filters, locale=locale, now=now, **kwargs
    )
    page_title = title or translator(locale, "reports")("Sales dashboard")
    if fmt == "html":
        data = to_html(results, title=page_title, locale=locale, filters=filters).encode()
    else:
        data = to_xlsx(results)
    audit.record(
        session,
        actor=actor,
        action="report.export",
        entity_type="report",
        entity_id=None,
        changes={"reports": [r.key for r in results], "format": fmt},
        detail=repr(filters) if filters is not None else None,
    )
    session.flush()
    return data
