"""Import and export of customers: safe file reading, column mapping, cleaning, batches with
preview and revert, and exports that keep the access rules.

    from crm_core.importing import ImportOptions, preview_import, run_import, revert_batch
"""

from crm_core.importing.batches import (
    DuplicateHint,
    ImportOptions,
    ImportRejected,
    ImportReport,
    RevertResult,
    RowIssue,
    list_batches,
    preview_import,
    revert_batch,
    revert_check,
    run_import,
)
from crm_core.importing.mapping import (
    MATCH_KEYS,
    TARGETS,
    guess_mapping,
    list_mappings,
    load_mapping,
    save_mapping,
)
from crm_core.importing.reading import detect_encoding, read_frame

__all__ = [
    "MATCH_KEYS",
    "TARGETS",
    "DuplicateHint",
    "ImportOptions",
    "ImportRejected",
    "ImportReport",
    "RevertResult",
    "RowIssue",
    "detect_encoding",
    "guess_mapping",
    "list_batches",
    "list_mappings",
    "load_mapping",
    "preview_import",
    "read_frame",
    "revert_batch",
    "revert_check",
    "run_import",
    "save_mapping",
]
