"""One settings object, read from ``CRM_*`` environment variables when asked for."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path


def _default_data_dir() -> Path:
    return Path(os.environ.get("CRM_DATA_DIR", Path.cwd() / "var")).resolve()


@dataclass(frozen=True)
class Settings:
    """Configuration of one CRM installation. It describes and does nothing."""

    data_dir: Path = field(default_factory=_default_data_dir)
    database_url: str = ""
    default_region: str = "CN"
    default_currency: str = "CNY"
    environment: str = "development"
    host: str = "127.0.0.1"
    port: int = 8080
    session_idle_minutes: int = 30
    session_max_hours: int = 12
    login_throttle_after: int = 5
    import_max_bytes: int = 200 * 1024 * 1024
    import_max_rows: int = 2_000_000
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_sender: str = "crm@localhost"

    @property
    def sqlite_path(self) -> Path | None:
        url = self.resolved_database_url
        if url.startswith("sqlite:///"):
            return Path(url.removeprefix("sqlite:///"))
        return None

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'crm.sqlite3'}"

    def storage_secret(self) -> str:
        """The panel's storage secret: from ``CRM_STORAGE_SECRET`` or a file made once (mode 600)."""
        env = os.environ.get("CRM_STORAGE_SECRET")
        if env:
            return env
        if self.environment == "production":
            raise RuntimeError("CRM_STORAGE_SECRET must be set in production")
        path = self.data_dir / "storage_secret"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(48))
        return path.read_text().strip()


def get_settings() -> Settings:
    """Read the settings from the environment now (never cached at import time)."""
    env = os.environ

    def _int(name: str, default: int) -> int:
        return int(env[name]) if env.get(name) else default

    return Settings(
        database_url=env.get("CRM_DATABASE_URL", ""),
        default_region=env.get("CRM_DEFAULT_REGION", "CN").upper(),
        default_currency=env.get("CRM_DEFAULT_CURRENCY", "CNY").upper(),
        environment=env.get("CRM_ENV", "development"),
        host=env.get("CRM_HOST", "127.0.0.1"),
        port=_int("CRM_PORT", 8080),
        session_idle_minutes=_int("CRM_SESSION_IDLE_MINUTES", 30),
        session_max_hours=_int("CRM_SESSION_MAX_HOURS", 12),
        login_throttle_after=_int("CRM_LOGIN_THROTTLE_AFTER", 5),
        import_max_bytes=_int("CRM_IMPORT_MAX_BYTES", 200 * 1024 * 1024),
        import_max_rows=_int("CRM_IMPORT_MAX_ROWS", 2_000_000),
        smtp_host=env.get("CRM_SMTP_HOST", ""),
        smtp_port=_int("CRM_SMTP_PORT", 25),
        smtp_sender=env.get("CRM_SMTP_SENDER", "crm@localhost"),
    )
