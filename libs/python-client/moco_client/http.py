"""REST transport on the standard library (urllib): auth, JSON, retries, typed errors."""

from __future__ import annotations

import http.client
import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Union

from .errors import MocoApiError, MocoConnectionError, api_error
from .retry import MAX_DELAY_S, RetryPolicy, parse_retry_after

# "The client's timeout": None means none at all (uploads, whose answer waits for validation).
DEFAULT_TIMEOUT: Any = object()

Query = Mapping[str, Union[str, int, float, bool, None]]
# A body to send as is; a callable makes a fresh one per attempt, so that the request can be retried.
Body = Union[bytes, Callable[[], Union[bytes, Iterable[bytes]]]]


class Http:
    def __init__(self, base_url: str, api_key: str, timeout_s: float, retry: RetryPolicy) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.retry = retry

    def url(self, path: str, query: Optional[Query] = None) -> str:
        url = urllib.parse.urljoin(self.base_url, path.lstrip("/"))
        pairs = [(k, _query_value(v)) for k, v in (query or {}).items() if v is not None]
        return f"{url}?{urllib.parse.urlencode(pairs)}" if pairs else url

    def json(self, path: str, **kwargs: Any) -> Any:
        with self.open(path, **kwargs) as res:
            return json.loads(res.read())

    def open(
        self,
        path: str,
        *,
        method: str = "GET",
        query: Optional[Query] = None,
        json_body: Any = None,
        body: Optional[Body] = None,
        headers: Optional[Dict[str, str]] = None,
        retry: Optional[bool] = None,
        timeout_s: Optional[float] = DEFAULT_TIMEOUT,
    ) -> http.client.HTTPResponse:
        """A successful (2xx) response, after retries; the caller reads and closes it."""
        retry = method in ("GET", "HEAD") if retry is None else retry
        attempts = self.retry.max_retries + 1 if retry else 1
        # A 429 was refused before anything was done, so even a request not safe to repeat is sent
        # again, if it can be: JSON or no body, or a body the caller made retriable.
        resendable = retry or not callable(body) or json_body is not None
        all_headers = {"Authorization": f"Bearer {self.api_key}", "Accept": "application/json", **(headers or {})}
        if json_body is not None:
            all_headers["Content-Type"] = "application/json"
        url = self.url(path, query)
        attempt = 0
        while True:
            attempt += 1
            data = json.dumps(json_body).encode() if json_body is not None else body() if callable(body) else body
            request = urllib.request.Request(url, data=data, headers=all_headers, method=method)
            try:
                return urllib.request.urlopen(request, timeout=self.timeout_s if timeout_s is DEFAULT_TIMEOUT else timeout_s)
            except urllib.error.HTTPError as err:
                error = api_error(err.code, err.read(), err.headers.get("x-request-id"), parse_retry_after(err.headers.get("retry-after")))
                err.close()
                if not self._retriable(error, attempt, attempts, resendable):
                    raise error from None
                time.sleep(self.retry.delay(attempt, error.retry_after))
            except (urllib.error.URLError, http.client.HTTPException, OSError, socket.timeout) as err:
                if attempt >= attempts:
                    raise MocoConnectionError(f"{method} {path}: {err}") from err
                time.sleep(self.retry.delay(attempt))

    def _retriable(self, error: MocoApiError, attempt: int, attempts: int, resendable: bool) -> bool:
        if error.retry_after is not None and error.retry_after > MAX_DELAY_S:
            return False
        if error.status == 429:
            return resendable and attempt <= self.retry.max_retries
        return error.status >= 500 and attempt < attempts


def _query_value(value: Union[str, int, float, bool]) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def segment(value: str) -> str:
    """A path segment, escaped (ids come from callers)."""
    return urllib.parse.quote(value, safe="")
