"""Backoff between attempts: exponential with jitter, never shorter than the server's ``Retry-After``."""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass
from typing import Optional

# The longest pause between attempts; a Retry-After beyond it is not waited for: the caller gets the
# error (and its retry_after) instead.
MAX_DELAY_S = 30.0


def parse_retry_after(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """Seconds to wait, from ``Retry-After`` as delta-seconds or as an HTTP date; None when absent or unreadable."""
    if value is None or value.strip() == "":
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@dataclass(frozen=True)
class RetryPolicy:
    """``max_retries`` extra attempts after a network error, a 5xx or a 429; delays start at ``base_delay_s``."""

    max_retries: int = 3
    base_delay_s: float = 0.25

    def delay(self, attempt: int, retry_after: Optional[float] = None) -> float:
        """Seconds before attempt ``attempt + 1`` (attempt counts from 1)."""
        backoff = self.base_delay_s * 2 ** (attempt - 1) * (0.5 + random.random())
        return min(max(backoff, retry_after or 0.0), MAX_DELAY_S)
