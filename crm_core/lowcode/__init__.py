"""Low-code: custom modules (record types defined by an admin), form layouts for any record
page and a report builder with saved reports.

* ``fieldspec``: the field-spec abstraction both built-in and custom forms render from
* ``modules``: module definitions and their schema changes (kept or refused with a count)
* ``permissions``: role permissions per module and the record scope of each user
* ``records``: records of a module (create, edit, search, filter, page, archive, bulk, import,
  export, timeline)
* ``links``: what a link field's picker offers, and the labels of linked records (one record's
  for its form, a whole list page's in one batch)
* ``cli``: ``crm modules list|show|export|import``
* ``layouts``: sections (title, columns, order), field order, help and per-role hidden fields
  of any record page; the panel's editor is ``app.pages.layout_editor``
* ``report_builder``: saved reports computed by SQL aggregation under the user's access rights

The storage design is documented in ``crm_core.models.lowcode``.
"""
