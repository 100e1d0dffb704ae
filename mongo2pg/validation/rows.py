"""The per-table proof: every source document against its row in the target.

A chunk of documents in id order is proven at once by comparing the SHA-256 of its expected rows
(computed by expect.py, never by the transform) with PostgreSQL's digest over the same id range; a
chunk that differs is compared row by row, and a row that differs field by field, by the full rules.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from itertools import islice
from typing import Any

from bson import ObjectId
from psycopg2 import sql

from ..ids import (
    IdFormatError,
    bad_id_reason,
    document_id,
    oid_hex_from_uuid_hex,
    row_id,
    uuid_from_objectid,
    uuid_hex_from_oid_hex,
)
from ..issues import ErrorLogAccount
from ..mapping import Column, Mapping, Table
from ..migration.retry import StderrEvents, with_retries
from ..source.codec import as_document
from ..source.readers import open_source, tune_gc_for_documents
from .expect import (
    NULL_MARK,
    ROW_SEP,
    NoValue,
    chunk_digest_query,
    compile_expected_row,
    compile_raw_digest,
    expected_text,
    matches,
    ms_text,
    select_expr,
)
from .report import MAX_LISTED, TableCheck, new_lists

CHUNK = 5_000  # documents per comparison, at most: one digest query, or one row-by-row look-up
CHUNK_BYTES = 16 << 20  # BSON bytes per comparison, at most: memory follows this, not the documents' size
NUMBER_TYPES = {"integer", "bigint", "double"}
ROW_SEP_BYTES, NULL_MARK_BYTES = ROW_SEP.encode(), NULL_MARK.encode()


def _row_key(table: Table, d: dict) -> str | None:
    """The id of the row a document would have, as the select prints it; None for an _id that cannot be one."""
    _id = d.get("_id")
    return row_id(_id) if bad_id_reason(_id, table.text_id) is None else None


def _fill_expected(col: Column, oid: ObjectId, enums) -> Any:
    if col.fill == "objectid_time":
        return ms_text(oid.generation_time)
    return expected_text(col, col.fill, enums)


def compare_fields(chk: TableCheck, mapping: Mapping, table: Table, cols: list[Column], d: dict, key: str,
                    row: tuple, fixed: dict[str, set[str]], report: dict) -> None:
    """The full per-field rules, for a row whose fast comparison did not prove it equal."""
    _id = d["_id"]
    for c, actual in zip(cols, row[1:], strict=True):
        v = d.get(c.source)
        try:
            if v is None:
                exp = _fill_expected(c, _id, mapping.enums) if (c.not_null and c.fill is not None) else None
            elif key in fixed[c.name]:
                exp = None  # dangling reference set to NULL by policy, logged as a fix-up
            else:
                exp = expected_text(c, v, mapping.enums)
            ok = matches(c, exp, actual)
        except (NoValue, ValueError, TypeError) as exc:
            exp, ok = f"<unrepresentable: {exc}>", False
        if ok:
            continue
        chk.fields_mismatched += 1
        entry = {"tableName": table.name, "mongoId": key, "postgresUuid": row[0], "fieldName": c.name,
                 "expectedValue": _jsonable(exp), "actualValue": actual,
                 "mismatchType": "value" if actual is not None else "missing"}
        if len(report["fieldMismatches"]) < MAX_LISTED:
            report["fieldMismatches"].append(entry)
        if c.type in ("timestamp", "enum", "jsonb") or c.type in NUMBER_TYPES:
            report["typeErrorCount"] += 1
            if len(report["typeErrors"]) < MAX_LISTED:
                report["typeErrors"].append({"tableName": table.name, "recordUuid": row[0], "fieldName": c.name,
                                             "expectedType": c.enum or c.type, "actualValue": actual,
                                             "errorMessage": f"expected {_jsonable(exp)!r}"})


def check_table(cur, mapping: Mapping, table: Table, source, log: ErrorLogAccount, report: dict, sample_ids: set | None,
                 junction_expected: dict[tuple[str, str], set[bytes]], docs_of: Iterable | None = None) -> TableCheck:
    """Every document of the table's collection against its row: one tuple comparison per row (the
    compiled expectation), the full field rules for a row it does not prove; and the junction links
    each document holds, into junction_expected by (junction, side whose array holds them). `docs_of`: only
    these raw documents (the caller accounts for the rest of the table, validation/since.py)."""
    chk = TableCheck(table.name)
    cols = [c for c in table.columns if not c.primary_key]
    columns = sql.SQL(", ").join([select_expr(table.pk)] + [select_expr(c) for c in cols])
    select_ids = sql.SQL("SELECT {} FROM {} WHERE {} = ANY(%s::{}[])").format(
        columns, sql.Identifier(table.name), sql.Identifier(table.pk.name), sql.SQL(table.pk.type))
    select_digest = chunk_digest_query(table)
    expect, expect_digest = compile_expected_row(table), compile_expected_row(table, "digest")
    rejected = log.rejected.get(table.name, set())
    rejected_uuids = (set(rejected) if table.text_id else
                      {uuid_from_objectid(r) for r in rejected if len(r) == 24 and ObjectId.is_valid(r)})
    fixed = {c.name: log.fixed.get((table.name, c.source), set()) for c in cols}
    links = [(junction_expected[(j.name, "left" if s.holds == "right" else "right")], s.field, s.holds == "right")
             for j, s in mapping.junction_sources(table.collection)]
    # A table of string ids is checked row by row (the chunk digest and the C builder take ObjectId ids).
    plan = None if table.text_id else compile_raw_digest(table, links)
    rejected_in_source = 0
    docs: list[bytes | dict] = []  # raw BSON, or the document already decoded (the Python path)
    uids: list[str | None] = []  # each document's UUID as hex, None for an _id that is no ObjectId
    texts: list[bytes | None] = []  # each expected digest row the C builder settled, None: by expect.py
    nulls: list[int] = []

    def flush() -> None:
        nonlocal rejected_in_source
        skipped = _chunk_proven(cur, select_digest, expect_digest, 1 + len(cols), docs, uids, texts, nulls, rejected)
        if skipped is None:
            check_rows()
        else:
            chk.rows_checked += len(docs) - skipped
            rejected_in_source += skipped
        for held_list in (docs, uids, texts, nulls):
            held_list.clear()

    def check_rows() -> None:
        """Row by row: which documents are lost, rejected, present; the full rules where a row differs."""
        nonlocal rejected_in_source
        keyed = [(d, _row_key(table, d)) for d in map(as_document, docs)]
        cur.execute(select_ids, ([u for _, u in keyed if u is not None],))
        rows = {r[0]: r for r in cur.fetchall()}
        for d, u in keyed:
            row = rows.get(u)
            if row is None:
                key = str(d.get("_id"))
                if key in rejected:
                    rejected_in_source += 1
                else:
                    chk.lost += 1
                    chk.flagged.add(key)
                    if len(report["lostRecords"]) < MAX_LISTED:
                        report["lostRecords"].append({"tableName": table.name, "mongoId": key,
                                                      "reason": "not in target and not in the reject log"})
                continue
            if u in rejected_uuids:
                rejected_in_source += 1
                chk.unexplained_rejects += 1
                chk.flagged.add(str(d["_id"]))
                if len(report["lostRecords"]) < MAX_LISTED:
                    report["lostRecords"].append({"tableName": table.name, "mongoId": str(d["_id"]), "reason":
                                                  "logged as rejected but present in the target"})
            chk.rows_checked += 1
            if row != expect(d, u):
                before = chk.fields_mismatched
                compare_fields(chk, mapping, table, cols, d, str(d["_id"]), row, fixed, report)
                if chk.fields_mismatched > before:
                    chk.flagged.add(str(d["_id"]))

    count = held = 0
    for raw in source.iter_raw(table.collection) if docs_of is None else docs_of:
        count += 1
        got = plan.row(raw) if plan is not None else None
        if got is not None:  # links added by the builder
            doc: bytes | dict = raw
            u, text, n = got
            key = oid_hex_from_uuid_hex(u)
        else:
            doc = d = as_document(raw)
            text, n = None, 0
            _id = d.get("_id")
            if type(_id) is ObjectId:
                key = _id.binary.hex()
                u = uuid_hex_from_oid_hex(key)  # the digest's form
            else:
                key, u = str(_id), None
            if links and u is not None:
                own = _id.binary
                for exp_set, field_name, own_is_left in links:
                    arr = d.get(field_name)
                    if isinstance(arr, list):
                        for e in arr:
                            if isinstance(e, ObjectId):
                                exp_set.add(own + e.binary if own_is_left else e.binary + own)
        if sample_ids is not None and key not in sample_ids:
            rejected_in_source += key in rejected
            continue
        docs.append(doc)
        uids.append(u)
        texts.append(text)
        nulls.append(n)
        held += len(raw)
        if len(docs) >= CHUNK or held >= CHUNK_BYTES:
            flush()
            held = 0
    if docs:
        flush()
    chk.source = count
    chk.fields_checked = chk.rows_checked * len(cols)
    cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table.name)))
    chk.target = cur.fetchone()[0]
    chk.rejected = len(rejected)
    # Every target row a source document explains was checked above: any other row is extra.
    if docs_of is None and (chk.target + rejected_in_source != chk.source
                            or (sample_ids is None and chk.target != chk.rows_checked)):
        _list_extra_rows(cur, table, source, chk, report)
    return chk


def _chunk_proven(cur, select_digest, expect, width: int, docs: list, uids: list[str | None],
                  texts: list[bytes | None], nulls: list[int], rejected: set[str]) -> int | None:
    """Prove a chunk at once: the target's rows over the chunk's id range are exactly the expected rows
    of its documents that were not rejected. PostgreSQL hashes its rows' text, we hash the expected
    text (the C builder's, or expect.py's for a row it left); equal counts and digests prove every field
    of every row. Returns how many of the chunk's documents the error log accounts for as rejected, or
    None: not proven (documents out of id order, a non-ObjectId id, a value left to the full rules, or
    any difference), for the row-by-row check.
    """
    if None in uids:
        return None
    total = len(docs)
    if rejected:
        kept = [i for i, u in enumerate(uids) if u[:12] + u[20:] not in rejected]
        docs, uids = [docs[i] for i in kept], [uids[i] for i in kept]
        texts, nulls = [texts[i] for i in kept], [nulls[i] for i in kept]
    if not uids or not all(map(str.__lt__, uids, islice(uids, 1, None))):
        return None
    if None in texts:
        texts, nulls = list(texts), list(nulls)
        try:
            for i, t in enumerate(texts):
                if t is None:
                    row, nulls[i] = expect(as_document(docs[i]), uids[i])
                    texts[i] = row.encode("utf-8")
                    # The separators and NULL marks are exactly the structural ones: no expected value holds
                    # either. (The C builder's rows hold no other: it leaves such a value to this path.)
                    if texts[i].count(ROW_SEP_BYTES) != width - 1 or texts[i].count(NULL_MARK_BYTES) != nulls[i]:
                        return None
        except (TypeError, UnicodeEncodeError):  # a value left to the full rules, or not valid UTF-8
            return None
    data = ROW_SEP_BYTES.join(texts)
    cur.execute(select_digest, (uids[0], uids[-1]))
    count, null_count, digest = cur.fetchone()
    if count != len(uids) or null_count != sum(nulls) or digest != hashlib.sha256(data).hexdigest():
        return None
    return total - len(uids)


def _list_extra_rows(cur, table: Table, source, chk: TableCheck, report: dict) -> None:
    """Rows in the target that no source document explains (a second read of the source's ids)."""
    source_ids = {str(d.get("_id")) for d in source.iter_all(table.collection)}
    cur.execute(sql.SQL("SELECT id::text FROM {}").format(sql.Identifier(table.name)))
    for (u,) in cur.fetchall():
        try:
            oid = str(document_id(u, table.text_id))
        except IdFormatError:
            oid = None
        if oid not in source_ids:
            chk.extra += 1
            if oid is not None:
                chk.flagged.add(oid)
            if len(report["extraRecords"]) < MAX_LISTED:
                report["extraRecords"].append({"tableName": table.name, "postgresUuid": u, "mongoId": oid})


def _jsonable(v: Any) -> Any:
    try:
        json.dumps(v)
        return v
    except (TypeError, ValueError):
        return repr(v)


def check_table_task(task: tuple) -> tuple[TableCheck, dict[str, Any], dict[tuple[str, str], set[bytes]]]:
    """One table in a worker process: its own source reader and read-only connection; checked again from
    its start after a lost connection (a restart, a failover), within --retry-seconds."""
    opts, table_name = task[0], task[2]
    tune_gc_for_documents()
    return with_retries(lambda: _check_table_once(*task), opts.retry_seconds, StderrEvents, table_name, opts.pg_uri)


def _check_table_once(opts, mapping: Mapping, table_name: str, sample_ids: set | None
                      ) -> tuple[TableCheck, dict[str, Any], dict[tuple[str, str], set[bytes]]]:
    source = open_source(opts.mongo_uri, opts.dump, opts.db)
    conn = opts.connect_read_only()
    lists: dict[str, Any] = new_lists()
    junction_expected: dict[tuple[str, str], set[bytes]] = defaultdict(set)
    try:
        with conn.cursor() as cur:
            check = check_table(cur, mapping, mapping.tables[table_name], source, ErrorLogAccount(opts.error_log), lists,
                                 sample_ids, junction_expected)
    finally:
        conn.close()
        source.close()
    return check, lists, dict(junction_expected)
