"""Waiting out an outage: a lost connection to either side is retried with backoff, up to
`retry_seconds`; every step is checkpointed, so a retried attempt resumes where the last one committed."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from psycopg2.errors import QueryCanceled
from pymongo.errors import AutoReconnect, ConnectionFailure

from ..connect import PG_TRANSIENT
from ..errors import ConnectionFailed

TRANSIENT = PG_TRANSIENT + (AutoReconnect, ConnectionFailure)
T = TypeVar("T")


def with_retries(attempt: Callable[[], T], retry_seconds: float, events: Any, label: str,
                 first_refusal_is_config: bool = False) -> T:
    """attempt() until it returns, retrying transient failures with a doubling delay (1 s to 15 s), each
    retry reported as a `retry` event. With `first_refusal_is_config`, a connection refused on the very
    first attempt is a configuration problem and raised at once; later ones are outages to wait out."""
    deadline = time.monotonic() + retry_seconds
    delay = 1.0
    tries = 0
    while True:
        tries += 1
        try:
            return attempt()
        except TRANSIENT + (ConnectionFailed,) as exc:
            if isinstance(exc, QueryCanceled):
                raise  # a statement cancelled (by the lock watch, or a timeout) is no outage to wait out
            refused_at_once = first_refusal_is_config and isinstance(exc, ConnectionFailed) and tries == 1
            if refused_at_once or time.monotonic() + delay > deadline:
                raise
            events.put({"event": "retry", "table": label, "message": str(exc).strip().splitlines()[0][:200],
                        "delay": delay})
            time.sleep(delay)
            delay = min(delay * 2, 15.0)
