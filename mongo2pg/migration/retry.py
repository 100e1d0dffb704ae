"""Waiting out an outage: a lost connection to either side is retried with backoff, up to
`retry_seconds`; every step is checkpointed, so a retried attempt resumes where the last one committed."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg2
from psycopg2.errors import QueryCanceled
from pymongo.errors import AutoReconnect, ConnectionFailure

from ..connect import PG_TRANSIENT
from ..errors import ConnectionFailed

TRANSIENT = PG_TRANSIENT + (AutoReconnect, ConnectionFailure)
T = TypeVar("T")
# What libpq says when the server went away under a statement (a restart, a failover, a crash after a full
# disk): psycopg2 raises some of these as a bare DatabaseError (in the middle of a COPY), with no SQLSTATE.
_LOST = ("server closed the connection", "terminating connection", "connection already closed",
         "could not receive data from server", "could not send data to server", "SSL SYSCALL error",
         "SSL connection has been closed", "no connection to the server", "lost synchronization with server")


def lost_connection(exc: BaseException) -> bool:
    """A PostgreSQL error that says the connection is gone, whatever class psycopg2 gave it."""
    if isinstance(exc, (*PG_TRANSIENT, ConnectionFailed)):
        return True
    return isinstance(exc, psycopg2.DatabaseError) and exc.pgcode is None and any(t in str(exc) for t in _LOST)


def with_retries(attempt: Callable[[], T], retry_seconds: float, events: Any, label: str) -> T:
    """attempt() until it returns, retrying transient failures (a lost or refused connection to either side)
    with a doubling delay (1 s to 15 s), each retry reported as a `retry` event."""
    deadline = time.monotonic() + retry_seconds
    delay = 1.0
    while True:
        try:
            return attempt()
        except (psycopg2.DatabaseError, *TRANSIENT, ConnectionFailed) as exc:
            if isinstance(exc, QueryCanceled) or not (isinstance(exc, TRANSIENT) or lost_connection(exc)):
                raise  # a cancelled statement (the lock watch, a timeout), or an error of the data: no outage
            if time.monotonic() + delay > deadline:
                raise
            events.put({"event": "retry", "table": label, "message": str(exc).strip().splitlines()[0][:200],
                        "delay": delay})
            time.sleep(delay)
            delay = min(delay * 2, 15.0)
