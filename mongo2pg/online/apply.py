"""The catch-up: the documents the capture marked (`mongo2pg.online_changes`) made what the source holds now.

A batch of marked ids, oldest first: each document is read as it is now, by `_id`; one still there is loaded
through the migration's own rules (remigrate: the transform, its rejects, the references' policies, the
unique indexes, the junction rule from both sides' arrays, and the records that had lost their reference
to it), one gone is removed with its junction rows (its children's references follow the foreign keys'
ON DELETE). The batch's marks are deleted in the same transaction, each only if the capture did not mark
its document again meanwhile (its sequence number unchanged): applying a change twice changes nothing, and
a change that arrives while its document is applied is applied again."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from bson import ObjectId
from psycopg2 import sql
from psycopg2.extras import execute_values

from ..ids import bad_id_reason, document_id, row_id
from ..issues import FIXUP, REMOVED, Issue, append_issues
from ..mapping import Mapping, Table
from ..migration.remigrate import logged_before, remigrate
from ..migration.settle import dangling_issue
from ..migration.state import STATE, insert_issues
from ..ops.state_read import backlog
from .capture import id_from_key
from .load import load_batch

NOTE = "re-read from the source and loaded by the online catch-up"


@dataclass
class Applied:
    loaded: int = 0
    removed: int = 0
    rejected: list[Any] = field(default_factory=list)
    batches: int = 0


def waiting(conn) -> int:
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('mongo2pg.online_changes') IS NOT NULL")
        if not cur.fetchone()[0]:
            return 0
        n, _ = backlog(cur)
    conn.rollback()
    return n


def bulk_complete(conn) -> bool:
    """Whether the bulk of this online migration has loaded everything: a complete summary stored after the
    capture's streams were opened (one stored before is an earlier run's, whose tables a fresh bulk is about to
    empty). Before, a change applied could collide with the bulk's own rows, so the catch-up waits; the
    marks keep."""
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('mongo2pg.run') IS NOT NULL AND to_regclass('mongo2pg.online_streams') IS NOT NULL")
        if not cur.fetchone()[0]:
            conn.rollback()
            return False
        cur.execute(sql.SQL("SELECT r.value, r.updated_at >= (SELECT min(opened_at) FROM {s}.online_streams) "
                            "FROM {s}.run r WHERE r.key = 'summary'").format(s=STATE))
        row = cur.fetchone()
    conn.rollback()
    return bool(row and row[1] and json.loads(row[0]).get("status") == "complete")


def apply_waiting(conn, source, mapping: Mapping, batch: int = 500, error_log: str | None = None,
                  progress=None, max_batches: int = 0) -> Applied:
    """Batches until no change waits (or max_batches, when given: the service's loop reads its streams
    between them)."""
    out = Applied()
    tables_of: dict[str, list[Table]] = {}
    for t in mapping.tables.values():
        tables_of.setdefault(t.collection, []).append(t)
    while True:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("SELECT collection, source_id, seq FROM {}.online_changes ORDER BY seq LIMIT %s")
                        .format(STATE), (batch,))
            marks = cur.fetchall()
        if not marks or (max_batches and out.batches >= max_batches):
            conn.rollback()
            return out
        wanted: list[tuple[Table, Any]] = []
        gone: list[tuple[Table, Any]] = []
        by_coll: dict[str, list[Any]] = {}
        for coll, key, _seq in marks:
            by_coll.setdefault(coll, []).append(id_from_key(key))
        for coll, ids in by_coll.items():
            present = source.fetch(coll, {str(i) for i in ids})
            for table in tables_of.get(coll, []):
                for _id in ids:
                    if bad_id_reason(_id, table.text_id) is not None:
                        continue  # an _id the table cannot hold: the bulk rejected it, and so would this
                    (wanted if str(_id) in present else gone).append((table, _id))
        issues: list[Issue] = []
        refused: list[tuple[Table, Any]] = []
        with conn.cursor() as cur:
            for table, _id in gone:
                out.removed += remove_row(conn, cur, mapping, table, _id, issues)
            execute_values(cur, sql.SQL("DELETE FROM {}.online_changes c USING (VALUES %s) v(collection, source_id, seq) "
                                        "WHERE (c.collection, c.source_id, c.seq) = (v.collection, v.source_id, v.seq::bigint)")
                           .format(STATE).as_string(cur), marks)
            done = load_batch(conn, cur, source, mapping, wanted, NOTE, refused)
            if done is None:  # PostgreSQL refused the batch: one by one, each refusal named
                done = remigrate(conn, source, mapping, wanted, None, note=NOTE, note_all=False, commit=False)
                logged = list(done.issues)  # remigrate has stored them
                refused = [(mapping.tables[i.table], id_of(mapping.tables[i.table], i.source_id))
                           for i in done.rejected if i.source_id is not None]
            else:
                issues += done.issues
                logged = []
            for table, _id in refused:  # the table holds the source as it is now: a row it refuses goes
                remove_row(conn, cur, mapping, table, _id, issues, note=None)
            insert_issues(cur, issues)
        conn.commit()
        if error_log:
            append_issues(error_log, logged + issues)
        out.loaded += len(done.loaded)
        out.rejected += done.rejected
        out.batches += 1
        if progress:
            progress(f"online apply: batch {out.batches}: {len(done.loaded)} loaded, {len(gone)} gone, "
                     f"{len(done.rejected)} rejected")


def id_of(table: Table, source_id: str) -> Any:
    return source_id if table.text_id else ObjectId(source_id)


def remove_row(conn, cur, mapping: Mapping, table: Table, _id: Any, issues: list[Issue],
               note: str | None = "gone from the source after the bulk read: removed by the online catch-up") -> int:
    """A row removed (its document gone from the source, or a duplicate at cutover): its junction rows; the
    rows that referenced it settled by their column's policy as the migration's settle step does (set NULL, or
    rejected), each logged; a `removed` entry saying `note` (when given) makes what the log said of the
    document past."""
    rid, key = row_id(_id), str(_id)
    for t in mapping.tables.values():
        for c in t.columns:
            if c.references != table.name or c.on_dangling == "keep":
                continue
            if c.on_dangling == "reject":
                cur.execute(sql.SQL("SELECT {pk}::text FROM {t} WHERE {c} = %s").format(
                    pk=sql.Identifier(t.pk.name), t=sql.Identifier(t.name), c=sql.Identifier(c.name)), (rid,))
                for (child,) in cur.fetchall():
                    child_id = document_id(child, t.text_id)
                    remove_row(conn, cur, mapping, t, child_id, issues)
                    issues.append(dangling_issue(t.name, str(child_id), child, c, table.name, rid))
                continue
            cur.execute(sql.SQL("UPDATE {t} SET {c} = NULL WHERE {c} = %s RETURNING {pk}::text").format(
                t=sql.Identifier(t.name), c=sql.Identifier(c.name), pk=sql.Identifier(t.pk.name)), (rid,))
            for (child,) in cur.fetchall():
                issues.append(dangling_issue(t.name, str(document_id(child, t.text_id)), child, c, table.name, rid))
    for j in mapping.junctions.values():
        for side in (j.left, j.right):
            if side.references == table.name:
                cur.execute(sql.SQL("DELETE FROM {} WHERE {} = %s").format(
                    sql.Identifier(j.name), sql.Identifier(side.column)), (rid,))
    cur.execute(sql.SQL("DELETE FROM {} WHERE {} = %s::{}").format(
        sql.Identifier(table.name), sql.Identifier(table.pk.name), sql.SQL(table.pk.type)), (rid,))
    removed = cur.rowcount
    if note and logged_before(conn, table.name, key):
        issues.append(Issue(FIXUP, table.name, key, rid, REMOVED, None, note))
    return removed
