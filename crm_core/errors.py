"""The small exception hierarchy of the CRM: every error carries a message a person can act on."""

from __future__ import annotations

from typing import Any


class CrmError(Exception):
    """Base of every error the services raise on purpose. ``status`` follows HTTP."""

    status: int = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class NotFound(CrmError):
    """The record does not exist, or the actor may not know it exists."""

    status = 404


class PermissionDenied(CrmError):
    """The actor's role or record access does not allow this."""

    status = 403


class InvalidInput(CrmError):
    """A value is invalid. ``field`` names it, so a form can show the error beside it."""

    status = 422

    def __init__(
        self, message: str, *, field: str | None = None, errors: dict[str, str] | None = None
    ):
        self.field = field
        self.errors: dict[str, str] = dict(errors or ({field: message} if field else {}))
        super().__init__(f"{field}: {message}" if field and not errors else message)


class ConflictError(CrmError):
    """The record changed since it was read (stale version) or a unique value is taken.

    ``current`` holds the stored values of the conflicting fields and ``attempted`` the
    values the caller tried to save, so a face can show both.
    """

    status = 409

    def __init__(
        self,
        message: str,
        *,
        current_version: int | None = None,
        current: dict[str, Any] | None = None,
        attempted: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.current_version = current_version
        self.current = current or {}
        self.attempted = attempted or {}


class DuplicateSuspected(CrmError):
    """A new or edited record looks like existing ones; ``candidates`` lists them with scores."""

    status = 409

    def __init__(self, message: str, *, candidates: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.candidates = candidates or []
