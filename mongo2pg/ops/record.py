"""`mongo2pg record <id>`: the runbook's P1 "data inconsistency reported" procedure in one command. For an
ObjectId, a UUID or a string id: the document (live source or the verified backup), its row and junction
links in PostgreSQL, a field-by-field comparison by validation's own rules, its entries in the reject log,
and the changes captured for it after go-live; then one verdict.

Verdicts: CONSISTENT (the row is the document by validation's rules), REJECTED (not loaded, and the log
says why), DIFFERS (fields or links differ), MISSING (a document without a row and no reject logged),
NO DOCUMENT (a row without a document: created after go-live, or removed from the source), NOT FOUND.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from bson import ObjectId
from psycopg2 import sql

from ..ids import IdFormatError, objectid_from_uuid, row_id, uuid_from_objectid
from ..issues import ErrorLogAccount, Issue, read_error_log
from ..mapping import Mapping, Table
from ..transform.links import own_links
from ..validation.expect import select_expr
from ..validation.report import TableCheck, new_lists
from ..validation.rows import compare_fields

GOOD = ("CONSISTENT",)


@dataclass
class Found:
    """What one table knows of the id."""

    table: str
    collection: str
    source_id: str  # the _id as an operator searches for it
    row_id: str  # the primary key as PostgreSQL prints it
    document: dict | None = None
    row: dict[str, Any] | None = None
    differences: list[dict[str, Any]] = field(default_factory=list)
    links: list[dict[str, Any]] = field(default_factory=list)
    log: list[Issue] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)
    verdict: str = ""


def candidates(mapping: Mapping, text: str) -> list[tuple[Table, Any]]:
    """(table, _id) pairs the given text can name: an ObjectId (or the UUID made of one) in the tables of
    ObjectIds, the text itself in the tables of string ids."""
    text = text.strip()
    oid = None
    if ObjectId.is_valid(text) and len(text) == 24:
        oid = ObjectId(text)
    else:
        try:
            oid = objectid_from_uuid(text)
        except IdFormatError:
            pass
    out: list[tuple[Table, Any]] = []
    for t in mapping.tables.values():
        if t.text_id:
            out.append((t, text))
        elif oid is not None:
            out.append((t, oid))
    return out


def look_up(conn, source, mapping: Mapping, text: str, error_log: str | None) -> list[Found]:
    """Every table where the id has a row, a document or a log entry. Rows and log entries first (cheap): the
    documents are read where they point, else in every candidate collection (a document may have lost its
    row and its log entry both; reading a dump's collection is a scan)."""
    logged = _log_entries(conn, error_log)
    account = ErrorLogAccount().take(logged)
    found = []
    for table, _id in candidates(mapping, text):
        key, rid = str(_id), row_id(_id)
        f = Found(table.name, table.collection, key, rid)
        f.log = [e for e in logged if e.table == table.name and (e.source_id == key or e.uuid == rid)]
        f.row = _row(conn, table, rid)
        found.append(f)
    hits = [f for f in found if f.row is not None or f.log] or found
    out = []
    for f in hits:
        table = mapping.tables[f.table]
        f.document = source.fetch(table.collection, {f.source_id}).get(f.source_id)
        if f.row is None and f.document is None and not f.log:
            continue
        f.changes = _changes(conn, table.name, f.row_id)
        if f.row is not None and f.document is not None:
            f.differences = _differences(mapping, table, f.document, f.row, f.source_id, account)
            f.links = _links(conn, mapping, table, f.document, f.row_id)
        f.verdict = _verdict(f, f.source_id in account.rejected[f.table])
        out.append(f)
    return out


def _row(conn, table: Table, rid: str) -> dict[str, Any] | None:
    cols = [select_expr(c) for c in table.columns]
    with conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT {} FROM {} WHERE {} = %s::{}").format(
            sql.SQL(", ").join(cols), sql.Identifier(table.name), sql.Identifier(table.pk.name),
            sql.SQL(table.pk.type)), (rid,))
        got = cur.fetchone()
    conn.rollback()
    return None if got is None else dict(zip([c.name for c in table.columns], got, strict=True))


def _differences(mapping: Mapping, table: Table, doc: dict, row: dict, key: str, account: ErrorLogAccount
                 ) -> list[dict]:
    """Validation's own field rules (rows.compare_fields), with the log accounted for as validation does: a
    field a logged fix-up set to NULL is no difference (unless the record was loaded again since)."""
    cols = [c for c in table.columns if not c.primary_key]
    fixed = {c.name: account.fixed.get((table.name, c.source), set()) for c in cols}
    report = new_lists()
    compare_fields(TableCheck(table.name), mapping, table, cols, doc, key,
                   (row[table.pk.name], *(row[c.name] for c in cols)), fixed, report)
    return [{"field": m["fieldName"], "expected": m["expectedValue"], "actual": m["actualValue"]}
            for m in report["fieldMismatches"]]


def _links(conn, mapping: Mapping, table: Table, doc: dict, rid: str) -> list[dict[str, Any]]:
    """Each junction this table is a side of: the ids linked in PostgreSQL, and those the document's own
    array holds (a link may also come from the other side's array: listed, not called wrong)."""
    out = []
    for j in mapping.junctions.values():
        for side, other in ((j.left, j.right), (j.right, j.left)):
            if side.references != table.name:
                continue
            with conn.cursor() as cur:
                cur.execute(sql.SQL("SELECT {}::text FROM {} WHERE {} = %s::uuid ORDER BY 1").format(
                    sql.Identifier(other.column), sql.Identifier(j.name), sql.Identifier(side.column)), (rid,))
                linked = [r[0] for r in cur.fetchall()]
            conn.rollback()
            held = {uuid_from_objectid(r if side is j.left else left)
                    for left, r in own_links(j, table.collection, doc) if (left if side is j.left else r) == doc["_id"]}
            out.append({"junction": j.name, "linked": len(linked), "in_document": len(held),
                        "not_linked": sorted(held - set(linked)),
                        "linked_not_in_document": sorted(set(linked) - held)})
    return out


def _log_entries(conn, error_log: str | None) -> list[Issue]:
    """The reject log as the target's state holds it (the file is rewritten from it), else the file; the
    documents left out."""
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('mongo2pg.rejects') IS NOT NULL")
        if cur.fetchone()[0]:
            cur.execute("SELECT severity, tbl, source_id, uuid, reason, field, message FROM mongo2pg.rejects "
                        "ORDER BY seq")
            rows = cur.fetchall()
            conn.rollback()
            return [Issue(*r) for r in rows]
    conn.rollback()
    if error_log:
        try:
            return [replace(i, document=None) for i in read_error_log(error_log)]
        except FileNotFoundError:
            pass
    return []


def _changes(conn, table: str, rid: str) -> list[dict[str, Any]]:
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('mongo2pg.changes') IS NOT NULL")
        if not cur.fetchone()[0]:
            conn.rollback()
            return []
        cur.execute("SELECT op, changed_at::text, consumed_at IS NOT NULL FROM mongo2pg.changes "
                    "WHERE tbl = %s AND pk = %s ORDER BY seq", (table, rid))
        rows = cur.fetchall()
    conn.rollback()
    return [{"op": {"I": "insert", "U": "update", "D": "delete"}.get(op, op), "at": at, "applied_to_mongodb": done}
            for op, at, done in rows]


def _verdict(f: Found, rejected: bool) -> str:
    if f.row is None:
        if f.document is None:
            return "NOT FOUND"
        return "REJECTED" if rejected else "MISSING"
    if f.document is None:
        return "NO DOCUMENT"
    if f.differences or any(link["not_linked"] for link in f.links):
        return "DIFFERS"
    return "CONSISTENT"


def render(found: list[Found], text: str) -> str:
    if not found:
        return f"record {text}: in no table of the mapping, no document, no log entry (NOT FOUND)\n"
    lines = []
    for f in found:
        lines.append(f"record {f.source_id} in {f.table} (row id {f.row_id}): {f.verdict}")
        lines.append(f"  document: {'found' if f.document is not None else 'none'} in {f.collection}")
        lines.append(f"  row:      {'found' if f.row is not None else 'none'} in {f.table}")
        if f.row is not None and f.document is not None:
            lines.append(f"  fields:   {len(f.differences)} differ")
            lines += [f"    {d['field']}: expected {d['expected']!r}, found {d['actual']!r}" for d in f.differences]
        for link in f.links:
            lines.append(f"  links {link['junction']}: {link['linked']} in PostgreSQL, {link['in_document']} in the "
                         f"document's array" + (f"; not linked: {', '.join(link['not_linked'][:10])}"
                                                if link["not_linked"] else ""))
        for e in f.log:
            lines.append(f"  log: {e.severity} {e.reason}{' ' + e.field if e.field else ''}: {e.message}")
        if f.changes:
            waiting = sum(1 for c in f.changes if not c["applied_to_mongodb"])
            lines.append(f"  captured changes since go-live: {len(f.changes)} ({waiting} not yet applied to MongoDB); "
                         f"last: {f.changes[-1]['op']} at {f.changes[-1]['at']}")
    return "\n".join(lines) + "\n"
