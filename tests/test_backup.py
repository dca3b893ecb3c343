"""Backups of a live database and verified restores; damaged files are refused."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import func, select

from crm_core import customers as svc
from crm_core.backup import BackupError, create_backup, restore_backup, verify_backup
from crm_core.db import Database
from crm_core.models import Customer
from tests.conftest import make_staff


def test_backup_while_writing_then_verified_restore(sqlite_db: Database, tmp_path) -> None:
    staff = make_staff(sqlite_db)
    stop = threading.Event()
    written: list[int] = []

    def writer() -> None:
        i = 0
        while not stop.is_set():
            with sqlite_db.transaction() as s:
                new_id = svc.create_customer(s, actor=staff.admin, data={"name": f"W{i}"}).id
            written.append(new_id)  # counted once committed
            i += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(written) < 20:
            time.sleep(0.01)
        committed_before = len(written)
        backup = create_backup(sqlite_db.url, tmp_path / "backups")
    finally:
        stop.set()
        thread.join()
    manifest = verify_backup(backup)
    in_backup = manifest["row_counts"]["customers"]
    assert committed_before <= in_backup <= len(written)

    # damage the live database's content, then restore
    with sqlite_db.transaction() as s:
        s.execute(Customer.__table__.delete())
    restore_backup(backup, sqlite_db.url)
    sqlite_db.dispose()
    with sqlite_db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Customer)) == in_backup
        names = set(s.scalars(select(Customer.name)))
        assert {f"W{i}" for i in range(in_backup)} == names  # a consistent prefix of the writes


def test_damaged_backup_is_refused_and_nothing_replaced(sqlite_db: Database, tmp_path) -> None:
    staff = make_staff(sqlite_db)
    with sqlite_db.transaction() as s:
        svc.create_customer(s, actor=staff.admin, data={"name": "Keep me"})
    backup = create_backup(sqlite_db.url, tmp_path)
    data = bytearray(backup.read_bytes())
    data[len(data) // 2] ^= 0xFF
    backup.write_bytes(bytes(data))
    with pytest.raises(BackupError, match="damaged"):
        restore_backup(backup, sqlite_db.url)
    with sqlite_db.transaction() as s:
        assert s.scalar(select(Customer.name)) == "Keep me"
    backup.with_name(backup.name + ".manifest.json").unlink()
    with pytest.raises(BackupError, match="manifest"):
        verify_backup(backup)


@pytest.mark.postgres
def test_postgres_backup_and_restore(postgres_url: str, tmp_path) -> None:
    db = Database(postgres_url)
    try:
        from tests.conftest import _truncate_postgres

        _truncate_postgres(db)
        staff = make_staff(db)
        with db.transaction() as s:
            svc.create_customer(s, actor=staff.admin, data={"name": "PG person"})
        backup = create_backup(postgres_url, tmp_path)
        assert verify_backup(backup)["format"] == "postgresql"
        with db.transaction() as s:
            svc.create_customer(s, actor=staff.admin, data={"name": "After backup"})
        db.dispose()
        restore_backup(backup, postgres_url)
        with db.transaction() as s:
            assert list(s.scalars(select(Customer.name))) == ["PG person"]
    finally:
        db.dispose()
