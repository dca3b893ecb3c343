"""The crm command line: real processes on a real SQLite file; errors are one clear line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CRM = [sys.executable, "-m", "crm_core.cli"]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "CRM_DATA_DIR": str(tmp_path / "data"), "CRM_DATABASE_URL": ""}


def crm(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CRM, *args], env=env, input=stdin, capture_output=True, text=True, timeout=300
    )


def test_commands_before_init_say_what_to_do(env):
    result = crm(env, "customers", "list")
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        == "error: the database is missing or out of date: run `crm init` first"
    )
    assert "Traceback" not in result.stderr


def test_init_users_demo_search_backup_restore(env, tmp_path):
    assert crm(env, "init").returncode == 0
    first = crm(env, "users", "bootstrap-admin")
    assert first.returncode == 0 and "Password (shown only this once" in first.stdout
    again = crm(env, "users", "bootstrap-admin")
    assert "exists already" in again.stdout and "Password" not in again.stdout

    added = crm(
        env,
        "users",
        "add",
        "--username",
        "li",
        "--role",
        "sales",
        "--team",
        "East",
        "--password-stdin",
        stdin="a-long-enough-password\n",
    )
    assert added.returncode == 0, added.stderr
    bad = crm(
        env,
        "users",
        "add",
        "--username",
        "x",
        "--role",
        "king",
        "--password-stdin",
        stdin="a-long-enough-password\n",
    )
    assert (
        bad.returncode == 1 and bad.stderr.count("\n") == 1 and "unknown role 'king'" in bad.stderr
    )
    weak = crm(
        env,
        "users",
        "add",
        "--username",
        "y",
        "--role",
        "sales",
        "--password-stdin",
        stdin="short\n",
    )
    assert weak.returncode == 1 and "password: must have at least 10 characters" in weak.stderr
    listing = crm(env, "users", "list").stdout
    assert "li" in listing and "East" in listing and "sales" in listing

    demo = crm(env, "demo", "--customers", "200", "--seed", "5")
    assert demo.returncode == 0, demo.stderr
    assert "demo data loaded: " in demo.stdout
    assert "skipped" in crm(env, "demo", "--if-empty").stdout

    listed = crm(env, "customers", "list", "--limit", "5")
    assert listed.returncode == 0 and len(listed.stdout.strip().splitlines()) == 5
    customer_id = listed.stdout.split()[0]
    shown = crm(env, "customers", "show", customer_id)
    assert shown.returncode == 0 and f"id: {customer_id}" in shown.stdout
    missing = crm(env, "customers", "show", "999999")
    assert (
        missing.returncode == 1
        and missing.stderr.strip() == "error: customer 999999 does not exist"
    )
    masked = crm(env, "customers", "show", customer_id, "--as", "li")
    assert masked.returncode in (0, 1)  # li sees own customers and unowned leads only

    backup = crm(env, "backup", "--output", str(tmp_path / "bk"))
    assert backup.returncode == 0, backup.stderr
    file = next((tmp_path / "bk").glob("*.sqlite3"))
    assert crm(env, "restore", str(file), "--yes").returncode == 0
    file.write_bytes(file.read_bytes()[:-100] + b"x" * 100)
    damaged = crm(env, "restore", str(file), "--yes")
    assert damaged.returncode == 1 and "is damaged" in damaged.stderr
    assert "Traceback" not in damaged.stderr
