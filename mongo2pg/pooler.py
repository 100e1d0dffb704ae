"""A connection pooler in transaction mode (PgBouncer, Supavisor, a provider's pooled endpoint) in front of
the target is refused, in one line that says why and what to use instead. The engine's sessions keep state
from one transaction to the next: the migration's own session settings (synchronous_commit off for its
bulk writes), the one-run advisory lock, a COPY's table and the checkpoints' order. Through such a pooler
they are lost between statements, or worse, left on a server connection the application is handed next
(its acknowledged writes would then not survive a crash).

How it is told: two sessions open at once are served by one server backend (the same pg_backend_pid)
only where a pooler hands out server connections per transaction or statement; a server, or a pooler in
session mode, gives each session its own.
"""

from __future__ import annotations

from .connect import pg_connect
from .errors import ConfigError
from .redact import redact_uri


class TransactionPooler(ConfigError):
    """The URI leads through a transaction-mode pooler (exit 2)."""


def backend_pids(uri: str) -> tuple[int, int]:
    """pg_backend_pid() of two sessions open at once, the first one's statement done before the second's."""
    first = pg_connect(uri, "mongo2pg-pooler-check")
    second = None
    try:
        first.autocommit = True
        with first.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            a = cur.fetchone()[0]
        second = pg_connect(uri, "mongo2pg-pooler-check")
        second.autocommit = True
        with second.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            b = cur.fetchone()[0]
    finally:
        first.close()
        if second is not None:
            second.close()
    return a, b


def refuse_transaction_pooler(uri: str, option: str = "--pg-uri") -> None:
    a, b = backend_pids(uri)
    if a == b:
        raise TransactionPooler(
            f"{option} {redact_uri(uri)} leads through a connection pooler in transaction mode (two sessions were "
            f"served by one server backend, pid {a}): session settings, the one-run lock and a COPY across "
            "statements do not survive it, and a session setting would be left for the app's next connection. "
            "Use the database's direct URL (Prisma's DIRECT_URL, the provider's non-pooled endpoint); the app "
            "keeps the pooled one")
