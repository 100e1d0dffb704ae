"""Waiting on another session's lock, never unseen. A session holding a lock on a target table (a forgotten
transaction, an app left connected, someone's psql) makes a run's statement wait; no batch commits, so the
only sign would be silence. A thread watches PostgreSQL for this run's sessions waiting on a lock and
names the session that holds it (pid, application, user, state, for how long, what it runs, from
pg_blocking_pids) within the hang window; past `hang_seconds` it applies `on_hang`: "stop" cancels the
waiting statements and the run stops, checkpointed, with the blocker named; "report" waits on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import psycopg2

from ..connect import pg_connect
from ..errors import GuardTripped

WATCHER = "mongo2pg-lockwatch"
# This database's sessions of this run's applications waiting on a lock, each with every session blocking it
# that is not one of ours (our own sessions wait on each other only by design, briefly).
BLOCKED = """
SELECT w.pid, extract(epoch FROM now() - w.query_start)::float8,
       b.pid, coalesce(nullif(b.application_name, ''), '(none)'), b.usename, b.state,
       extract(epoch FROM now() - coalesce(b.xact_start, b.backend_start))::float8,
       left(regexp_replace(coalesce(b.query, ''), '\\s+', ' ', 'g'), 120)
FROM pg_stat_activity w
CROSS JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS blocking(pid)
JOIN pg_stat_activity b ON b.pid = blocking.pid
WHERE w.datname = current_database() AND w.application_name LIKE 'mongo2pg%%'
  AND w.application_name <> %s AND w.wait_event_type = 'Lock'
  AND coalesce(b.application_name, '') NOT LIKE 'mongo2pg%%'
"""


class LockWatch:
    """`with LockWatch(...) as watch:` around a run; `watch.tripped` holds the stop's message, if any."""

    def __init__(self, pg_uri: str, hang_seconds: float, on_hang: str, emit: Callable[[str], None],
                 interval: float = 1.0):
        self.pg_uri, self.hang_seconds, self.on_hang, self.interval = pg_uri, hang_seconds, on_hang, interval
        self.report_after = min(5.0, hang_seconds / 2)  # named well within the hang window
        self.emit = emit  # the run's progress lines
        self.tripped: str | None = None
        self.last: str | None = None  # the newest blocker seen, for a hang stopped elsewhere
        self._reported: set[tuple[int, int]] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name=WATCHER, daemon=True)

    def __enter__(self) -> LockWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _watch(self) -> None:
        conn = None
        while not self._stop.wait(self.interval):
            try:
                if conn is None or conn.closed:
                    conn = pg_connect(self.pg_uri, WATCHER)
                    conn.autocommit = True
                with conn.cursor() as cur:
                    cur.execute(BLOCKED, (WATCHER,))
                    rows = cur.fetchall()
                    self._judge(cur, rows)
            except Exception:  # noqa: BLE001 - the watch must never take the run down; it tries again
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()

    def _judge(self, cur, rows: list[tuple]) -> None:
        for waiter, waited, pid, app, user, state, held, query in rows:
            line = (f"WAITING {waited:.0f}s on a lock held by another session: pid {pid}, application {app}, "
                    f"user {user}, {state} for {held:.0f}s, running: {query or '-'}")
            self.last = line
            if waited >= self.report_after and (waiter, pid) not in self._reported:
                self._reported.add((waiter, pid))
                self.emit(line + f" -- end it (SELECT pg_terminate_backend({pid})) or let it finish; "
                          f"--on-hang {self.on_hang} after {self.hang_seconds:g}s")
            if waited >= self.hang_seconds and self.on_hang == "stop" and self.tripped is None:
                self.tripped = (f"HUNG: {line}; stopped (on_hang: stop), checkpointed: end that session "
                                f"(SELECT pg_terminate_backend({pid})) or let it finish, then rerun (it resumes)")
                cur.execute("SELECT pg_cancel_backend(w.pid) FROM pg_stat_activity w WHERE w.pid = ANY(%s)",
                            ([r[0] for r in rows],))
                return

    def failure(self, exc: BaseException) -> BaseException:
        """The exception to raise for `exc`: the named stop when the watch cancelled the run's statements."""
        if self.tripped is not None and (isinstance(exc, psycopg2.errors.QueryCanceled) or "cancel" in str(exc)):
            return GuardTripped(self.tripped)
        if isinstance(exc, GuardTripped) and str(exc).startswith("HUNG") and self.last:
            return GuardTripped(f"{exc}; {self.last}")  # the load's own hang guard stopped first: name the blocker
        return exc
