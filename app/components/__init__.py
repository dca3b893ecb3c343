"""Reusable panel pieces: they take data and callbacks and never touch the database."""
