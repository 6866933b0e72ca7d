"""Typed errors: one class per kind of answer, each carrying the API's ``{code, message, param}``.

Branch on the class or on ``code`` (the API's error-code enum), never on the message text.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional


class MocoError(Exception):
    """Base of every error this client raises."""


class MocoConnectionError(MocoError):
    """The request got no answer (refused, reset, timed out), after every retry."""


class MocoApiError(MocoError):
    """An error answer of the API."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        param: Optional[str] = None,
        details: Optional[List[Dict[str, Any]]] = None,
        request_id: Optional[str] = None,
        retry_after: Optional[float] = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.param = param
        self.details = details or []
        self.request_id = request_id
        self.retry_after = retry_after


class InvalidRequestError(MocoApiError):
    """400: a parameter or the body is invalid (``param`` names it)."""


class AuthenticationError(MocoApiError):
    """401: no key, an unknown one, or a revoked one."""


class PermissionDeniedError(MocoApiError):
    """403: the key may not do this (admin routes)."""


class NotFoundError(MocoApiError):
    """404: no such resource in the key's project."""


class ConflictError(MocoApiError):
    """409: e.g. ``idempotency_conflict``, ``job_finished``, ``key_revoked``."""


class PayloadTooLargeError(MocoApiError):
    """413: the body is over the server's limit."""


class UnprocessableError(MocoApiError):
    """422: e.g. ``invalid_dataset``: the file was read and refused (``param`` names the entry)."""


class RateLimitError(MocoApiError):
    """429: still over the limit after every retry; ``retry_after`` says when to come back."""


class ServerError(MocoApiError):
    """5xx: ``server_busy``, ``embedder_unavailable``, ``queue_unavailable``, ``internal_error``..."""


_BY_STATUS = {
    400: InvalidRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: UnprocessableError,
    429: RateLimitError,
}


def api_error(status: int, body: bytes, request_id: Optional[str], retry_after: Optional[float]) -> MocoApiError:
    """The typed error for an error answer; a body that is not the API's error shape keeps its first bytes."""
    cls = _BY_STATUS.get(status, ServerError if status >= 500 else MocoApiError)
    try:
        error = json.loads(body)["error"]
        return cls(status, error["code"], error["message"], error.get("param"), error.get("details"), request_id, retry_after)
    except (ValueError, KeyError, TypeError):
        text = body[:200].decode("utf-8", "replace")
        return cls(status, "http_error", f"HTTP {status}: {text}", None, None, request_id, retry_after)
