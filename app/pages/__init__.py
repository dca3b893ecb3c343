"""One module per page (or group of pages); each exposes ``PageSpec`` objects for ``app.main``."""
