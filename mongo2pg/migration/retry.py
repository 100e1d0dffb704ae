"""Waiting out an outage: a lost connection to either side is retried with backoff, up to
`retry_seconds`; every step is checkpointed, so a retried attempt resumes where the last one committed."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg2
from psycopg2.errors import QueryCanceled
from pymongo.errors import AutoReconnect, ConnectionFailure

from ..connect import PG_TRANSIENT
from ..errors import ConnectionFailed, TargetLost
from ..redact import redact_text

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


class StderrEvents:
    """with_retries' events as lines on stderr, for a command without a progress display."""

    @staticmethod
    def put(event: dict[str, Any]) -> None:
        if event.get("event") == "retry":
            print(f"  {event['table']}: connection lost ({event['message']}); retrying in {event['delay']:.0f} s",
                  file=sys.stderr, flush=True)


def with_retries(attempt: Callable[[], T], retry_seconds: float, events: Any, label: str,
                 pg_uri: str | None = None, data_dir: Callable[[], str | None] = lambda: None) -> T:
    """attempt() until it returns, retrying transient failures (a lost or refused connection to either side)
    with a doubling delay (1 s to 15 s), each retry reported as a `retry` event. Given the target's URI, a
    lost target that does not come back in time ends as TargetLost: one line saying what it is now."""
    deadline = time.monotonic() + retry_seconds
    delay = 1.0
    seen: list[str] = []
    while True:
        try:
            return attempt()
        except (psycopg2.DatabaseError, *TRANSIENT, ConnectionFailed) as exc:
            if isinstance(exc, QueryCanceled) or not (isinstance(exc, TRANSIENT) or lost_connection(exc)):
                raise  # a cancelled statement (the lock watch, a timeout), or an error of the data: no outage
            seen.append(str(exc))
            if time.monotonic() + delay > deadline:
                if pg_uri and isinstance(exc, psycopg2.Error | ConnectionFailed):
                    raise TargetLost(target_lost(pg_uri, exc, seen, data_dir())) from None
                raise
            events.put({"event": "retry", "table": label, "message": str(exc).strip().splitlines()[0][:200],
                        "delay": delay})
            time.sleep(delay)
            delay = min(delay * 2, 15.0)


def target_lost(pg_uri: str, exc: BaseException, seen: list[str], data_dir: str | None = None) -> str:
    """The one line a run that lost its target ends with: what went wrong, what the server says now (asked
    once), a full disk where it shows (a message of the outage says so, or the data directory, when this
    host sees it, has no room left), and that the checkpoint holds."""
    first = (getattr(exc, "pgerror", None) or str(exc)).strip().splitlines()
    full = any("No space left on device" in m for m in seen) or _no_room(data_dir)
    return (f"the target went away ({redact_text(first[0] if first else type(exc).__name__)}) and did not stay "
            f"up within --retry-seconds; now {target_state(pg_uri)}"
            + ("; its disk is full (No space left on device): free space on the file system of its data "
               "directory (WAL included)" if full else "")
            + "; every committed batch is checkpointed: rerun to resume once it is back")


def target_state(pg_uri: str) -> str:
    """What the server says when asked now, in a few words."""
    try:
        conn = psycopg2.connect(pg_uri, connect_timeout=5, application_name="mongo2pg-probe")
    except psycopg2.Error as exc:
        text = str(exc)
        if "recovery mode" in text or "starting up" in text:
            return "it is starting up (crash recovery)"
        if "shutting down" in text:
            return "it is shutting down"
        if "Connection refused" in text or "timeout expired" in text:
            return "it does not answer (its log says why)"
        return "it refuses connections: " + redact_text(text.strip().splitlines()[0] if text.strip() else "")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_is_in_recovery()")
            standby = cur.fetchone()[0]
    except psycopg2.Error:
        return "it answers, but not yet to a query"
    finally:
        conn.close()
    return ("it answers, as a standby (read-only): point --pg-uri at the primary" if standby
            else "it answers again")


def _no_room(path: str | None) -> bool:
    """The file system of `path` (seen from this host) is full: less than four WAL segments (64 MiB) left.
    After a PANIC on a full WAL the segment it could not write is gone again, so "full" is a little room."""
    if not path:
        return False
    try:
        st = os.statvfs(path)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < 64 << 20
