"""Connections to both sides, with one clear error line on failure and no secret in it."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg2

if TYPE_CHECKING:
    import pymongo

from .errors import ConnectionFailed
from .redact import password_of, redact_text, redact_uri

PG_TRANSIENT = (psycopg2.OperationalError, psycopg2.InterfaceError)
T = TypeVar("T")


# Whole-table statements (anti-joins, DISTINCT, index builds): hash in memory rather than spill to disk,
# and skip JIT compilation, which costs more than it saves on queries that run once.
BULK_SESSION = {"jit": "off", "work_mem": "64MB"}
# The load's batches: a commit does not wait for its WAL flush. Safe for the run: a batch's rows and its
# checkpoint commit together, so a server crash can only lose the last batches whole, and the retry (or
# the rerun) reads them again from the checkpoint that survived (the error log is rewritten from the
# stored state). A part's last commit, and the steps after the load, commit synchronously, so a part or a
# run is durable before it says it is done.
LOAD_SESSION = {"synchronous_commit": "off"}


def pg_connect(uri: str, application_name: str = "mongo2pg", settings: dict[str, str] | None = None):
    """A psycopg2 connection (autocommit off), with `settings` SET for the session. Raises ConnectionFailed
    with a redacted, actionable message."""
    try:
        conn = psycopg2.connect(uri, application_name=application_name, connect_timeout=10)
        if settings:
            with conn.cursor() as cur:
                for name, value in settings.items():
                    cur.execute("SELECT set_config(%s, %s, false)", (name, value))
            conn.commit()
    except psycopg2.Error as exc:
        msg = redact_text(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
                          (password_of(uri),))
        hint = "check host, port, user, password and database in --pg-uri"
        if "does not exist" in msg:
            hint = "create the database first (playbooks/10_prepare.yml does) or fix the name in --pg-uri"
        elif "password authentication failed" in msg or "no pg_hba.conf entry" in msg:
            hint = "check the user and password, and that pg_hba.conf allows this client"
        elif "certificate" in msg or "SSL" in msg or "sslrootcert" in msg:
            hint = ("TLS: the server's certificate must be signed by the CA in sslrootcert and name the host "
                    "(sslmode=verify-full); check sslrootcert in --pg-uri (pg_tls in the inventory)")
        elif "Connection refused" in msg or "could not connect" in msg or "timeout" in msg:
            hint = "is PostgreSQL running and listening there?" + _lab_hint(uri, LAB_PG_PORT)
        raise ConnectionFailed(f"PostgreSQL {redact_uri(uri)}: {msg} -- {hint}") from None
    return conn


def mongo_client(uri: str, timeout_ms: int = 10_000) -> pymongo.MongoClient:
    """A pymongo client that has answered a ping. Raises ConnectionFailed with a redacted message."""
    # Imported here: monitoring runs this package on the database host, which has psycopg2 but no pymongo.
    import pymongo
    from pymongo.errors import PyMongoError

    try:
        client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms,
                                     tz_aware=True)
        client.admin.command("ping")
    except (PyMongoError, ValueError) as exc:
        msg = redact_text(str(exc).split(", Timeout:")[0][:300], (password_of(uri),))
        raise ConnectionFailed(f"MongoDB {redact_uri(uri)}: {msg} -- check host, port and credentials in --mongo-uri"
                               + _lab_hint(uri, LAB_MONGO_PORT)) from None
    return client


@dataclass(frozen=True)
class TableJob:
    """A job on one table, with the lock its statement takes there: `shared` ones (CREATE INDEX's SHARE
    lock) run side by side on a table; any other (ANALYZE, VALIDATE CONSTRAINT: SHARE UPDATE EXCLUSIVE,
    which conflicts with both) runs alone on it. `name` says what it does (finalize reports progress by it)."""
    table: str
    shared: bool
    run: Callable[[Any], Any]
    name: str = ""

    def __call__(self, conn) -> Any:
        return self.run(conn)


def _conflicts(job: Any, running: list[Any]) -> bool:
    return isinstance(job, TableJob) and any(
        isinstance(r, TableJob) and r.table == job.table and not (r.shared and job.shared) for r in running)


def run_on_connections(connect: Callable[[], Any], jobs: Iterable[Callable[[Any], T]], workers: int) -> Iterator[T]:
    """Run each job(conn) on one of `workers` PostgreSQL connections, yielding results as jobs finish.

    Jobs start in their order, except that a TableJob waits while a job holding a conflicting lock on its
    table runs: a free connection takes the next job it can run instead of waiting on the server's lock.
    Threads suffice: psycopg2 waits for the server without holding the GIL, so the statements run side by
    side on the server's cores. The first failure is raised once the running jobs end (no job starts
    after it); each connection is closed on the way out.
    """
    jobs = list(jobs)
    if workers <= 1 or len(jobs) <= 1:
        conn = connect()
        try:
            for job in jobs:
                yield job(conn)
        finally:
            conn.close()
        return
    pending, running = list(jobs), []
    finished: queue.Queue = queue.Queue()
    ready = threading.Condition()
    stop = threading.Event()

    def take() -> Any:
        with ready:
            while pending and not stop.is_set():
                job = next((j for j in pending if not _conflicts(j, running)), None)
                if job is not None:
                    pending.remove(job)
                    running.append(job)
                    return job
                ready.wait()
            return None

    def serve() -> None:
        conn = None
        try:
            while (job := take()) is not None:
                try:
                    if conn is None:
                        conn = connect()
                    finished.put((True, job(conn)))
                except BaseException as exc:  # noqa: BLE001 - carried to the caller, which raises it
                    stop.set()
                    finished.put((False, exc))
                finally:
                    with ready:
                        running.remove(job)
                        ready.notify_all()
        finally:
            if conn is not None:
                conn.close()

    threads = [threading.Thread(target=serve, name=f"mongo2pg-pg-{i}", daemon=True)
               for i in range(min(workers, len(jobs)))]
    for t in threads:
        t.start()
    try:
        for _ in jobs:
            ok, value = finished.get()
            if not ok:
                raise value
            yield value
    finally:
        stop.set()
        with ready:
            ready.notify_all()
        for t in threads:
            t.join()


LAB_PG_PORT, LAB_MONGO_PORT = 55432, 37017  # the local lab's (scripts/lab.sh)


def _lab_hint(uri: str, port: int) -> str:
    """`make lab-up` named only where the URI is the lab's own server: elsewhere it would mislead."""
    return " (make lab-up starts the lab)" if f":{port}/" in uri or uri.rstrip("/").endswith(f":{port}") else ""
