"""Consistent backups of a live database, with a manifest, and verified restores.

SQLite uses the online backup API (readers and writers may carry on); PostgreSQL uses
``pg_dump --format=custom``. Every backup gets ``<file>.manifest.json`` with its SHA-256
checksum; ``restore_backup`` checks the checksum and the file's integrity before it replaces
anything.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from crm_core import __version__
from crm_core.errors import CrmError, InvalidInput

MANIFEST_SUFFIX = ".manifest.json"


class BackupError(CrmError):
    """A backup could not be made, or a backup file is damaged or unusable."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _pg_url(url: str) -> str:
    """A libpq URL (``postgresql://``) from a SQLAlchemy one."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise InvalidInput("an in-memory database cannot be backed up", field="database_url")
    return Path(database)


def manifest_path(backup: Path) -> Path:
    return backup.with_name(backup.name + MANIFEST_SUFFIX)


def create_backup(url: str, destination: Path) -> Path:
    """Write a consistent copy of the database at ``url`` into the folder ``destination``.

    Returns the backup file; its manifest sits beside it.
    """
    destination.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        source = _sqlite_path(url)
        if not source.exists():
            raise BackupError(f"database file {source} does not exist")
        target = destination / f"crm-{stamp}.sqlite3"
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
        dst = sqlite3.connect(target)
        try:
            with dst:
                src.backup(dst, pages=1024)
            dst.execute("PRAGMA journal_mode=DELETE")
        finally:
            dst.close()
            src.close()
        tables = _sqlite_counts(target)
    elif backend == "postgresql":
        target = destination / f"crm-{stamp}.pgdump"
        if shutil.which("pg_dump") is None:
            raise BackupError("pg_dump is not installed (apt-get install postgresql-client)")
        proc = subprocess.run(
            ["pg_dump", "--format=custom", "--no-owner", f"--file={target}", _pg_url(url)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            target.unlink(missing_ok=True)
            raise BackupError(f"pg_dump failed: {proc.stderr.strip().splitlines()[-1:]}")
        tables = {}
    else:
        raise InvalidInput(f"cannot back up a '{backend}' database", field="database_url")
    manifest = {
        "format": backend,
        "file": target.name,
        "sha256": sha256_file(target),
        "bytes": target.stat().st_size,
        "created_at": datetime.now(UTC).isoformat(),
        "crm_version": __version__,
        "row_counts": tables,
    }
    manifest_path(target).write_text(json.dumps(manifest, indent=2))
    return target


def _sqlite_counts(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' "
                "AND name NOT LIKE 'customer_fts%' ORDER BY name"
            )
        ]
        return {n: conn.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names}
    finally:
        conn.close()


def verify_backup(backup: Path) -> dict[str, Any]:
    """Check a backup against its manifest and its own integrity; return the manifest.

    Raises ``BackupError`` naming the problem for a missing, damaged or foreign file.
    """
    if not backup.is_file():
        raise BackupError(f"backup file {backup} does not exist")
    mpath = manifest_path(backup)
    if not mpath.is_file():
        raise BackupError(f"manifest {mpath.name} is missing; cannot verify {backup.name}")
    try:
        manifest = json.loads(mpath.read_text())
        expected = manifest["sha256"]
    except (ValueError, KeyError):
        raise BackupError(f"manifest {mpath.name} is unreadable") from None
    actual = sha256_file(backup)
    if actual != expected:
        raise BackupError(
            f"backup {backup.name} is damaged: SHA-256 {actual[:12]}… does not match the "
            f"manifest's {expected[:12]}…"
        )
    if manifest.get("format") == "sqlite":
        try:
            conn = sqlite3.connect(f"file:{backup}?mode=ro", uri=True)
            try:
                result = conn.execute("PRAGMA integrity_check").fetchone()[0]
                has_schema = conn.execute(
                    "SELECT count(*) FROM sqlite_master WHERE name='alembic_version'"
                ).fetchone()[0]
            finally:
                conn.close()
        except sqlite3.DatabaseError as exc:
            raise BackupError(f"backup {backup.name} is not a usable SQLite file: {exc}") from None
        if result != "ok":
            raise BackupError(f"backup {backup.name} fails SQLite's integrity check: {result}")
        if not has_schema:
            raise BackupError(f"backup {backup.name} is not a CRM database")
    elif manifest.get("format") == "postgresql":
        proc = subprocess.run(
            ["pg_restore", "--list", str(backup)], capture_output=True, check=False
        )
        if proc.returncode != 0:
            raise BackupError(f"backup {backup.name} is not a readable pg_dump archive")
    else:
        raise BackupError(f"unknown backup format {manifest.get('format')!r}")
    return manifest


def restore_backup(backup: Path, url: str) -> dict[str, Any]:
    """Verify ``backup`` and then replace the database at ``url`` with it."""
    manifest = verify_backup(backup)
    backend = make_url(url).get_backend_name()
    if manifest["format"] != backend:
        raise BackupError(f"backup is a {manifest['format']} backup; the target is {backend}")
    if backend == "sqlite":
        target = _sqlite_path(url)
        target.parent.mkdir(parents=True, exist_ok=True)
        # copy into the live file through the backup API: open connections see a consistent switch
        with tempfile.TemporaryDirectory() as tmp:
            staged = Path(tmp) / "staged.sqlite3"
            shutil.copy2(backup, staged)
            src = sqlite3.connect(staged)
            dst = sqlite3.connect(target, timeout=30)
            try:
                src.backup(dst)
            finally:
                dst.close()
                src.close()
        os.chmod(target, 0o600)
    else:
        proc = subprocess.run(
            [
                "pg_restore",
                "--clean",
                "--if-exists",
                "--no-owner",
                "--single-transaction",
                f"--dbname={_pg_url(url)}",
                str(backup),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise BackupError(f"pg_restore failed: {proc.stderr.strip().splitlines()[-1:]}")
    return manifest
