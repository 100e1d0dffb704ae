"""COPY into the target: one transaction per batch holds the rows, the junction links staged from
them, the rejects, and the checkpoint. A kill at any moment loses at most the uncommitted batch,
which the rerun reads again from the committed position.
"""

from __future__ import annotations

import io
import time

import psycopg2
from psycopg2 import sql
from psycopg2.extensions import encodings

from ..ids import row_id
from ..issues import REJECT, Issue
from ..source.codec import as_document, to_extended_json
from ..stages import Stages
from ..transform import BatchResult, copy_escape, linkstage
from .state import STATE, Checkpoint, insert_issues, write_checkpoint


def _copy(cur, stmt: sql.Composable, lines: list[str]) -> None:
    """COPY the lines as bytes in the connection's encoding (what psycopg2 does to a text file): a
    StringIO of the batch would hold it as 4 bytes a character once any is non-ASCII."""
    data = "".join(lines).encode(encodings[cur.connection.encoding])
    cur.copy_expert(stmt, io.BytesIO(data), size=1 << 20)


def _copy_stage(cur, stage: list[bytes]) -> None:
    """The staged links: binary COPY tuples (linkstage.py), whose names are UTF-8; a connection in another
    encoding gets them as text lines in its own (PostgreSQL reads binary text in the client's encoding)."""
    columns = sql.SQL("{}.link_stage (junction, left_id, right_id, source_collection, source_field)").format(STATE)
    if cur.connection.encoding == "UTF8":
        data = linkstage.SIGNATURE + b"".join(stage) + linkstage.TRAILER
        cur.copy_expert(sql.SQL("COPY {} FROM STDIN (FORMAT binary)").format(columns), io.BytesIO(data), size=1 << 20)
        return
    lines = []
    for row in stage:
        junction, left, right, collection, field = linkstage.fields(row)
        lines.append("\t".join([copy_escape(junction.decode()), left.hex(), right.hex(), copy_escape(collection.decode()),
                                copy_escape(field.decode())]) + "\n")
    _copy(cur, sql.SQL("COPY {} FROM STDIN").format(columns), lines)


def copy_rows(cur, table: str, columns: list[str], lines: list[str]) -> list[tuple[int, str]]:
    """COPY the lines; on a data error find the offending lines by bisection under savepoints.

    Returns (index, PostgreSQL's message) for each line PostgreSQL refused; the rest are loaded.
    """
    stmt = sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(table),
                                                      sql.SQL(", ").join(sql.Identifier(c) for c in columns))
    refused: list[tuple[int, str]] = []
    if lines:
        _copy_bisecting(cur, stmt, lines, 0, len(lines), refused)
    return refused


def _copy_bisecting(cur, stmt: sql.Composable, lines: list[str], lo: int, hi: int,
                    refused: list[tuple[int, str]]) -> None:
    """COPY lines[lo:hi] under a savepoint; on a data error, each half again, down to the refused lines.
    A function of its own, not a closure calling itself: that closure is a reference cycle holding the
    batch's lines until the (deliberately rare, see readers.tune_gc_for_documents) cycle collector runs,
    and production-sized batches piled up to gigabytes."""
    cur.execute("SAVEPOINT m2p_copy")
    try:
        _copy(cur, stmt, lines[lo:hi])
        cur.execute("RELEASE SAVEPOINT m2p_copy")
    except (psycopg2.DataError, psycopg2.IntegrityError, psycopg2.InternalError, psycopg2.ProgrammingError) as exc:
        cur.execute("ROLLBACK TO SAVEPOINT m2p_copy")
        cur.execute("RELEASE SAVEPOINT m2p_copy")
        if hi - lo == 1:
            refused.append((lo, (exc.pgerror or str(exc)).strip().splitlines()[0]))
            return
        mid = (lo + hi) // 2
        _copy_bisecting(cur, stmt, lines, lo, mid, refused)
        _copy_bisecting(cur, stmt, lines, mid, hi, refused)


def commit_batch(conn, table: str, columns: list[str], result: BatchResult, cp: Checkpoint,
                 consumed: int, last_id: str | None, started: float, stages: Stages | None = None) -> list[Issue]:
    """Load one batch and advance the checkpoint, atomically. Returns every issue recorded."""
    stages = Stages() if stages is None else stages
    issues = list(result.issues)
    stage = result.stage
    with conn.cursor() as cur, stages.timed("load: COPY rows"):
        refused = copy_rows(cur, table, columns, result.lines)
        if refused:
            for idx, message in refused:
                doc = as_document(result.docs[idx])  # the raw BSON, when the C row builder read it
                issues.append(Issue(REJECT, table, str(doc["_id"]), row_id(doc["_id"]), "pg_rejected", None,
                                    f"PostgreSQL refused the row: {message}", to_extended_json(doc)))
            # Links staged from (or to) a refused record would dangle: drop them with it.
            if stage:  # (a table of string ids has no junctions: parse.py)
                gone = {bytes.fromhex(result.uuids[i]) for i, _ in refused}
                stage = [row for row in stage if not gone.intersection(linkstage.ends(row))]
    with conn.cursor() as cur:
        if stage:
            with stages.timed("load: COPY link stage"):
                _copy_stage(cur, stage)
        with stages.timed("load: checkpoint and commit"):
            insert_issues(cur, issues)
            cp.position += consumed
            cp.last_id = last_id or cp.last_id
            cp.loaded += len(result.lines) - len(refused)
            cp.rejected += result.rejected + len(refused)
            cp.fixups += result.fixups
            cp.seconds += time.monotonic() - started
            write_checkpoint(cur, cp)
            conn.commit()
    return issues
