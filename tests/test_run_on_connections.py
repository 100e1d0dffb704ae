"""The post-load pool (connect.run_on_connections) on a real PostgreSQL: jobs whose locks conflict on one
table never run side by side (so no connection sits waiting on the server's lock while another table's
job could run), jobs on other tables or with shared locks do, and a failure stops the pool."""

from __future__ import annotations

import time

import psycopg2
import pytest

from mongo2pg.connect import TableJob, run_on_connections


def _holding(lock: str, table: str, seconds: float, spans: list):
    """A job that takes `lock` on `table` in a transaction and holds it for `seconds`; its span records when it
    held the lock and how long it waited for it."""
    def run(conn) -> str:
        entered = time.monotonic()
        with conn.cursor() as cur:
            cur.execute(f'LOCK TABLE "{table}" IN {lock} MODE')
            started = time.monotonic()
            cur.execute("SELECT pg_sleep(%s)", (seconds,))
        conn.commit()
        spans.append((table, lock, started, time.monotonic(), started - entered))
        return f"{lock} {table}"
    return run


def _create_tables(uri: str, *names: str) -> None:
    conn = psycopg2.connect(uri)
    with conn.cursor() as cur:
        for name in names:
            cur.execute(f'CREATE TABLE "{name}" (id int)')
    conn.commit()
    conn.close()


def _overlap(a, b) -> bool:
    return a[2] < b[3] and b[2] < a[3]


def test_conflicting_jobs_on_a_table_wait_for_each_other_and_others_run_beside(pg_db):
    _create_tables(pg_db, "a", "b")
    spans: list = []
    exclusive, shared = "SHARE UPDATE EXCLUSIVE", "SHARE"
    # In this order a plain pool would start the second ANALYZE-like job on `a` beside the first one, and
    # that connection would wait on the server; the pool takes the job on `b` instead.
    jobs = [TableJob("a", False, _holding(exclusive, "a", 0.6, spans)),
            TableJob("a", False, _holding(exclusive, "a", 0.6, spans)),
            TableJob("b", False, _holding(exclusive, "b", 0.3, spans)),
            TableJob("b", True, _holding(shared, "b", 0.3, spans)),
            TableJob("b", True, _holding(shared, "b", 0.3, spans))]
    done = list(run_on_connections(lambda: psycopg2.connect(pg_db), jobs, 3))
    assert len(done) == 5
    assert max(s[4] for s in spans) < 0.2, "a connection waited on the server for a lock another job held"
    on_a = [s for s in spans if s[0] == "a"]
    assert not _overlap(*on_a), "two conflicting locks on one table ran side by side"
    first_b = min((s for s in spans if s[0] == "b"), key=lambda s: s[2])
    assert first_b[1] == exclusive and _overlap(first_b, on_a[0]), "the job on b waited instead of running beside a"
    shared_b = [s for s in spans if s[0] == "b" and s[1] == shared]
    assert _overlap(*shared_b), "two shared locks on one table did not run side by side"


def test_a_failed_job_is_raised_and_no_job_starts_after_it(pg_db):
    _create_tables(pg_db, "c")
    spans: list = []

    def fail(conn):
        with conn.cursor() as cur:
            cur.execute("SELECT 1/0")

    jobs = [fail] + [TableJob("c", False, _holding("SHARE UPDATE EXCLUSIVE", "c", 0.2, spans)) for _ in range(6)]
    with pytest.raises(psycopg2.errors.DivisionByZero):
        list(run_on_connections(lambda: psycopg2.connect(pg_db), jobs, 2))
    assert len(spans) <= 1  # at most the one beside the failure, and none taken after it
