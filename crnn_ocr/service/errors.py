"""One exception type for every client-visible failure: a status, a short message, a metrics label."""

from __future__ import annotations


class ApiError(Exception):
    """A request the service refuses; rendered as ``{"error": message}`` with ``status``.

    Args:
        status: the HTTP status code.
        message: a sentence for the person calling the API (never a path or a stack trace).
        kind: a stable label for ``/metrics`` (``too_large``, ``not_an_image``...).
        headers: extra response headers (``Retry-After``, ``WWW-Authenticate``).
    """

    def __init__(self, status: int, message: str, kind: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        self.headers = headers or {}
