"""The record form every record page renders, built-in (the customer page) or generated (custom
modules): a resolved form layout (``crm_core.lowcode.layouts``) becomes its sections, each in
its number of columns, with the fields in order, help text as hint and tooltip, and nothing of
what the layout hides from the viewer's role.

A component: it takes data and callbacks and never touches the database. The page supplies
labelled options for fields whose choices it knows (``options``: a customer's stage or owner)
and search callbacks for link fields (``pickers``: a searchable select that asks the page's
service as the user types) with the labels of the current links (``labels``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import date
from typing import Any

from nicegui import ui

from crm_core.i18n import translator
from crm_core.lowcode.fieldspec import FieldSpec
from crm_core.lowcode.layouts import ResolvedLayout

#: ``search(text) -> {id: label}`` of a link field's picker (``None`` when the search failed).
SearchFn = Callable[[str], Mapping[Any, str] | None]


def as_text(value: Any) -> str:
    """A value as a text input shows it (lists joined, yes/no spelled out)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _select(options: Mapping[Any, str], label: str, value: Any) -> ui.select:
    choices = dict(options)
    if value not in choices:
        choices[value] = "" if value in ("", None) else str(value)
    return ui.select(choices, label=label, value=value)


def link_picker(label: str, value: Any, current: str | None, search: SearchFn) -> ui.select:
    """A searchable select of a link field: typing asks ``search`` for matching records."""
    keep: dict[Any, str] = {"": ""}
    if value not in (None, ""):
        keep[value] = current or f"#{value}"
    picker = ui.select(dict(keep), label=label, value=value if value is not None else "")
    picker.props("use-input fill-input hide-selected input-debounce=300 clearable")

    def on_input(e: Any) -> None:
        found = search(e.args if isinstance(e.args, str) else "")
        if found is None:
            return
        chosen = picker.value
        options = {"": ""}
        if chosen not in (None, ""):
            options[chosen] = picker.options.get(chosen, f"#{chosen}")
        options.update(found)
        picker.set_options(options, value=chosen if chosen is not None else "")

    picker.on("input-value", on_input)
    return picker


def field_widget(
    spec: FieldSpec,
    value: Any,
    *,
    locale: str,
    readonly: bool = False,
    options: Mapping[Any, str] | None = None,
    picker: SearchFn | None = None,
    current: str | None = None,
) -> Any:
    """One input for a ``FieldSpec`` (the same for built-in and custom fields)."""
    _ = translator(locale, "lowcode")
    label = spec.label(locale) + (" *" if spec.required else "")
    kind = spec.field_type
    if picker is not None and not readonly:
        widget: Any = link_picker(label, value, current, picker)
    elif options is not None:
        widget = _select(options, label, value if value is not None else "")
    elif kind in ("customer", "user", "module") and readonly and value not in (None, ""):
        widget = ui.input(label, value=current or f"#{value}")  # a link, read only
    elif kind in ("choice", "yes_no"):
        choices = (
            {"": "", **{c: c for c in spec.choices}}
            if kind == "choice"
            else {"": "", "yes": _("Yes"), "no": _("No")}
        )
        widget = _select(choices, label, as_text(value))
    elif kind == "multi_choice" and spec.choices:
        widget = ui.select(list(spec.choices), label=label, value=list(value or []), multiple=True)
    elif kind == "multi_choice":  # free entries (a customer's tags)
        items = [str(v) for v in value or []]
        widget = ui.select(
            items, label=label, value=items, multiple=True, new_value_mode="add-unique"
        )
    elif kind == "long_text":
        widget = ui.textarea(label, value=as_text(value))
    elif kind == "date":
        widget = ui.input(label, value=as_text(value)).props("type=date")
    elif kind == "datetime":
        text = as_text(value).replace("Z", "")[:16]
        widget = ui.input(label, value=text).props("type=datetime-local")
    elif kind in ("number", "money", "customer", "user", "module"):
        widget = ui.input(label, value=as_text(value)).props("inputmode=decimal")
    else:
        widget = ui.input(label, value=as_text(value))
    widget.classes("w-full").props("dense outlined").mark(f"field-{spec.key}")
    if spec.help_text:
        widget.tooltip(spec.help_text)
        widget.props["hint"] = spec.help_text
    if readonly:
        widget.props("readonly")
    return widget


def render_form(
    layout: ResolvedLayout,
    values: Mapping[str, Any],
    *,
    locale: str,
    readonly: bool = False,
    options: Mapping[str, Mapping[Any, str]] | None = None,
    pickers: Mapping[str, SearchFn] | None = None,
    labels: Mapping[str, str] | None = None,
    wide: Collection[str] = (),
) -> tuple[dict[str, Any], dict[str, ui.label]]:
    """Render a resolved layout's sections; returns the widgets and error labels by key.

    ``wide`` fields (long text) span every column of their section.
    """
    widgets: dict[str, Any] = {}
    errors: dict[str, ui.label] = {}
    for n, section in enumerate(layout.sections):
        ui.label(section.title(locale)).classes("text-subtitle1 mt-2").mark(f"section-{n}")
        columns = f"grid-cols-1 sm:grid-cols-{section.columns}"
        grid = ui.grid().classes(f"w-full {columns} gap-x-3 gap-y-0")
        grid.mark(f"section-{n}-columns-{section.columns}")
        with grid:
            for spec in section.fields:
                span = f" sm:col-span-{section.columns}" if spec.key in wide else ""
                with ui.column().classes("gap-0 w-full" + span):
                    widgets[spec.key] = field_widget(
                        spec,
                        values.get(spec.key),
                        locale=locale,
                        readonly=readonly or spec.readonly,
                        options=(options or {}).get(spec.key),
                        picker=(pickers or {}).get(spec.key),
                        current=(labels or {}).get(spec.key),
                    )
                    errors[spec.key] = (
                        ui.label("").classes("text-negative text-xs").mark(f"error-{spec.key}")
                    )
    return widgets, errors


def form_values(widgets: Mapping[str, Any]) -> dict[str, Any]:
    """The widgets' values, empty ones as ``None``."""
    return {k: (w.value if w.value != "" else None) for k, w in widgets.items()}


def show_errors(errors: Mapping[str, ui.label], exc: Any) -> None:
    """Each field's message of an ``InvalidInput`` beside it (``None`` clears them)."""
    for key, label in errors.items():
        label.set_text(exc.errors.get(key, "") if exc is not None else "")
