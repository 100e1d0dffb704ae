"""COPY loader: one transaction per batch holds the rows, the junction links staged
from them, the rejects, and the checkpoint. A kill at any moment loses at most the
uncommitted batch, which the rerun reads again from the committed position.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass

import psycopg2
from psycopg2 import sql

from .dumpfmt import to_extended_json
from .ids import uuid_text
from .schema import STATE_SCHEMA
from .transform import BatchResult, Issue

STATE = sql.Identifier(STATE_SCHEMA)
REJECT_COLUMNS = ("severity", "tbl", "source_id", "uuid", "reason", "field", "message", "document")


@dataclass
class Checkpoint:
    step: str
    position: int = 0
    last_id: str | None = None
    loaded: int = 0
    rejected: int = 0
    fixups: int = 0
    done: bool = False
    seconds: float = 0.0


def read_checkpoint(cur, step: str) -> Checkpoint:
    cur.execute(sql.SQL("SELECT position, last_id, loaded, rejected, fixups, done, seconds FROM {}.checkpoint "
                        "WHERE step = %s").format(STATE), (step,))
    row = cur.fetchone()
    return Checkpoint(step, *row) if row else Checkpoint(step)


def write_checkpoint(cur, cp: Checkpoint) -> None:
    cur.execute(sql.SQL("""INSERT INTO {}.checkpoint (step, position, last_id, loaded, rejected, fixups, done, seconds,
                                                     updated_at)
                           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, now())
                           ON CONFLICT (step) DO UPDATE SET position = EXCLUDED.position, last_id = EXCLUDED.last_id,
                             loaded = EXCLUDED.loaded, rejected = EXCLUDED.rejected, fixups = EXCLUDED.fixups,
                             done = EXCLUDED.done, seconds = EXCLUDED.seconds, updated_at = now()""").format(STATE),
                (cp.step, cp.position, cp.last_id, cp.loaded, cp.rejected, cp.fixups, cp.done, cp.seconds))


def _copy_text(value: str | None) -> str:
    if value is None:
        return "\\N"
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def insert_issues(cur, issues: list[Issue]) -> None:
    if not issues:
        return
    buf = io.StringIO()
    for i in issues:
        # The rejects table must take any text, including what PostgreSQL refused as data.
        fields = [i.severity, i.table, i.source_id, i.uuid, i.reason, i.field, i.message, i.document]
        buf.write("\t".join(_copy_text(None if f is None else str(f).replace("\x00", "\\u0000")
                                       .encode("utf-8", "backslashreplace").decode("utf-8")) for f in fields) + "\n")
    buf.seek(0)
    cur.copy_expert(sql.SQL("COPY {}.rejects ({}) FROM STDIN").format(
        STATE, sql.SQL(", ").join(sql.Identifier(c) for c in REJECT_COLUMNS)), buf)


def _copy(cur, stmt: sql.Composable, lines: list[str]) -> None:
    cur.copy_expert(stmt, io.StringIO("".join(lines)), size=1 << 20)


def copy_rows(cur, table: str, columns: list[str], lines: list[str]) -> list[tuple[int, str]]:
    """COPY the lines; on a data error find the offending lines by bisection under savepoints.

    Returns (index, PostgreSQL's message) for each line PostgreSQL refused; the rest are loaded.
    """
    stmt = sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(table),
                                                      sql.SQL(", ").join(sql.Identifier(c) for c in columns))
    refused: list[tuple[int, str]] = []

    def attempt(lo: int, hi: int) -> None:
        cur.execute("SAVEPOINT m2p_copy")
        try:
            _copy(cur, stmt, lines[lo:hi])
            cur.execute("RELEASE SAVEPOINT m2p_copy")
        except (psycopg2.DataError, psycopg2.IntegrityError, psycopg2.InternalError,
                psycopg2.ProgrammingError) as exc:
            cur.execute("ROLLBACK TO SAVEPOINT m2p_copy")
            cur.execute("RELEASE SAVEPOINT m2p_copy")
            if hi - lo == 1:
                refused.append((lo, (exc.pgerror or str(exc)).strip().splitlines()[0]))
                return
            mid = (lo + hi) // 2
            attempt(lo, mid)
            attempt(mid, hi)

    if lines:
        attempt(0, len(lines))
    return refused


def commit_batch(conn, table: str, columns: list[str], result: BatchResult, cp: Checkpoint,
                 consumed: int, last_id: str | None, started: float) -> list[Issue]:
    """Load one batch and advance the checkpoint, atomically. Returns every issue recorded."""
    issues = list(result.issues)
    with conn.cursor() as cur:
        refused = copy_rows(cur, table, columns, result.lines)
        if refused:
            bad_ids = set()
            for idx, message in refused:
                doc = result.docs[idx]
                bad_ids.add(str(doc["_id"]))
                issues.append(Issue("reject", table, str(doc["_id"]), uuid_text(doc["_id"]),
                                    "pg_rejected", None, f"PostgreSQL refused the row: {message}",
                                    to_extended_json(doc)))
            # Links staged from a refused record would dangle: drop them with it.
            refused_uuids = {result.lines[i].split("\t", 1)[0] for i, _ in refused}
            result.stage = [s for s in result.stage if not (set(s.split("\t")[1:3]) & refused_uuids)]
        if result.stage:
            _copy(cur, sql.SQL("COPY {}.link_stage (junction, left_id, right_id, source_collection, source_field) "
                               "FROM STDIN").format(STATE), result.stage)
        insert_issues(cur, issues)
        rejected_now = result.rejected + len(refused)
        cp.position += consumed
        cp.last_id = last_id or cp.last_id
        cp.loaded += len(result.lines) - len(refused)
        cp.rejected += rejected_now
        cp.fixups += result.fixups
        cp.seconds += time.monotonic() - started
        write_checkpoint(cur, cp)
    conn.commit()
    return issues
