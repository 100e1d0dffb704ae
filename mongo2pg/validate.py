"""Validation of every record, independent of the transform that loaded it.

The expected target value is computed (mongo2pg.expect) from the source value and the mapping's
declared type (never by calling mongo2pg.transform), and compared with what
PostgreSQL returns as text. Five layers: row counts (with rejects accounted by id),
field-level match, referential integrity (including junction completeness against
the union of both sides' arrays), type conversion, and schema.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

from bson import ObjectId
from psycopg2 import sql

from . import schema
from .connect import BULK_SESSION, pg_connect, run_on_connections
from .expect import (
    NULL_MARK,
    ROW_SEP,
    NoValue,
    chunk_digest_query,
    compile_expected_row,
    expected_text,
    matches,
    ms_text,
    select_expr,
)
from .ids import IdFormatError, objectid_from_uuid, uuid_from_objectid, uuid_text
from .mapping import Column, Mapping, Table, load_mapping
from .readers import open_source, tune_gc_for_documents
from .redact import redact_uri
from .workers import fork_pool

CHUNK = 5_000  # documents per comparison: one digest query, or one row-by-row look-up
MAX_LISTED = 200  # per list in the report; counts are always complete
NUMBER_TYPES = {"integer", "bigint", "double"}


@dataclass
class ValidateOptions:
    pg_uri: str
    mongo_uri: str | None = None
    dump: str | None = None
    db: str = "nextcrm"
    mapping: str = "nextcrm"
    report: str = "migration-validation-report.json"
    error_log: str = "migration-errors.log"
    sample: int = 0
    seed: int = 1
    min_match: float = 99.0
    strict: bool = True
    reference_schema: str | None = None
    # Tables checked in parallel worker processes (0: one per CPU, at most 4; 1: in this process).
    workers: int = 0

    def worker_count(self) -> int:
        return self.workers or min(os.cpu_count() or 1, 4)


class ErrorLog:
    """The migration's accounting: rejected ids and fixed-up fields, per table."""

    def __init__(self, path: str):
        self.rejected: dict[str, set[str]] = defaultdict(set)
        self.fixed: dict[tuple[str, str], set[str]] = defaultdict(set)  # (table, field) -> ids set to NULL
        self.dangling_links: dict[str, int] = defaultdict(int)
        self.present = Path(path).exists()
        if not self.present:
            return
        with open(path, encoding="utf-8") as f:
            for line in f:
                rec = json.loads(line)
                if rec["severity"] == "reject" and rec.get("_id"):
                    self.rejected[rec["table"]].add(rec["_id"])
                elif rec["reason"] == "dangling_reference":
                    self.fixed[(rec["table"], rec["field"])].add(rec["_id"])
                elif rec["reason"] == "junction_dangling":
                    self.dangling_links[rec["table"]] += 1


@dataclass
class TableCheck:
    table: str
    source: int = 0
    target: int = 0
    rejected: int = 0
    rows_checked: int = 0
    fields_checked: int = 0
    fields_mismatched: int = 0
    lost: int = 0
    extra: int = 0
    unexplained_rejects: int = 0


def _fill_expected(col: Column, oid: ObjectId, enums) -> Any:
    if col.fill == "objectid_time":
        return ms_text(oid.generation_time)
    return expected_text(col, col.fill, enums)


def _compare_fields(chk: TableCheck, mapping: Mapping, table: Table, cols: list[Column], d: dict, key: str,
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


def _check_table(cur, mapping: Mapping, table: Table, source, log: ErrorLog, report: dict, sample_ids: set | None,
                 junction_expected: dict[str, set[bytes]]) -> TableCheck:
    """Every document of the table's collection against its row: one tuple comparison per row (the
    compiled expectation), the full field rules for a row it does not prove; and the junction links
    each document holds, into junction_expected."""
    chk = TableCheck(table.name)
    cols = [c for c in table.columns if not c.primary_key]
    columns = sql.SQL(", ").join([select_expr(table.pk)] + [select_expr(c) for c in cols])
    select_ids = sql.SQL("SELECT {} FROM {} WHERE {} = ANY(%s::uuid[])").format(
        columns, sql.Identifier(table.name), sql.Identifier(table.pk.name))
    select_digest = chunk_digest_query(table)
    expect, expect_digest = compile_expected_row(table), compile_expected_row(table, "digest")
    rejected = log.rejected.get(table.name, set())
    rejected_uuids = {uuid_from_objectid(r) for r in rejected if len(r) == 24 and ObjectId.is_valid(r)}
    fixed = {c.name: log.fixed.get((table.name, c.source), set()) for c in cols}
    links = [(junction_expected[j.name], s.field, s.holds == "right")
             for j, s in mapping.junction_sources(table.collection)]
    rejected_in_source = 0
    docs: list[dict] = []
    uids: list[str | None] = []  # each document's UUID as hex, None for an _id that is no ObjectId

    def flush() -> None:
        nonlocal rejected_in_source
        skipped = _chunk_proven(cur, select_digest, expect_digest, 1 + len(cols), docs, uids, rejected)
        if skipped is None:
            check_rows()
        else:
            chk.rows_checked += len(docs) - skipped
            rejected_in_source += skipped
        docs.clear()
        uids.clear()

    def check_rows() -> None:
        """Row by row: which documents are lost, rejected, present; the full rules where a row differs."""
        nonlocal rejected_in_source
        keyed = [(d, None if u is None else uuid_text(d["_id"])) for d, u in zip(docs, uids, strict=True)]
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
                    if len(report["lostRecords"]) < MAX_LISTED:
                        report["lostRecords"].append({"tableName": table.name, "mongoId": key,
                                                      "reason": "not in target and not in the reject log"})
                continue
            if u in rejected_uuids:
                rejected_in_source += 1
                chk.unexplained_rejects += 1
                if len(report["lostRecords"]) < MAX_LISTED:
                    report["lostRecords"].append({"tableName": table.name, "mongoId": str(d["_id"]), "reason":
                                                  "logged as rejected but present in the target"})
            chk.rows_checked += 1
            if row != expect(d, u):
                _compare_fields(chk, mapping, table, cols, d, str(d["_id"]), row, fixed, report)

    count = 0
    for d in source.iter_all(table.collection):
        count += 1
        _id = d.get("_id")
        if type(_id) is ObjectId:
            h = _id.binary.hex()
            u = h[:12] + "80008000" + h[12:]  # ids.uuid_hex, inline: the digest's form (PostgreSQL reads it too)
        else:
            u = None
        if links and u is not None:
            own = _id.binary
            for exp_set, field_name, own_is_left in links:
                arr = d.get(field_name)
                if isinstance(arr, list):
                    for e in arr:
                        if isinstance(e, ObjectId):
                            exp_set.add(own + e.binary if own_is_left else e.binary + own)
        if sample_ids is not None and str(_id) not in sample_ids:
            rejected_in_source += str(_id) in rejected
            continue
        docs.append(d)
        uids.append(u)
        if len(docs) >= CHUNK:
            flush()
    if docs:
        flush()
    chk.source = count
    chk.fields_checked = chk.rows_checked * len(cols)
    cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table.name)))
    chk.target = cur.fetchone()[0]
    chk.rejected = len(rejected)
    # Every target row a source document explains was checked above: any other row is extra.
    if chk.target + rejected_in_source != chk.source or (sample_ids is None and chk.target != chk.rows_checked):
        _list_extra_rows(cur, table, source, chk, report)
    return chk


def _chunk_proven(cur, select_digest, expect, width: int, docs: list[dict], uids: list[str | None],
                  rejected: set[str]) -> int | None:
    """Prove a chunk at once: the target's rows over the chunk's id range are exactly the expected rows
    of its documents that were not rejected. PostgreSQL hashes its rows' text, we hash the expected
    text; equal counts and digests prove every field of every row. Returns how many of the chunk's
    documents the error log accounts for as rejected, or None: not proven (documents out of id order,
    a non-ObjectId id, a value left to the full rules, or any difference), for the row-by-row check.
    """
    if None in uids:
        return None
    total = len(docs)
    if rejected:
        kept = [(d, u) for d, u in zip(docs, uids, strict=True) if str(d["_id"]) not in rejected]
        docs, uids = [d for d, _ in kept], [u for _, u in kept]
    if not uids or not all(map(str.__lt__, uids, islice(uids, 1, None))):
        return None
    try:
        texts, nulls = zip(*map(expect, docs, uids), strict=True)
        text = ROW_SEP.join(texts)
        data = text.encode("utf-8")
    except (TypeError, UnicodeEncodeError):  # a value left to the full rules, or not valid UTF-8
        return None
    # The separators and NULL marks are exactly the structural ones: no expected value holds either.
    if text.count(ROW_SEP) != len(texts) * width - 1 or text.count(NULL_MARK) != sum(nulls):
        return None
    cur.execute(select_digest, (uids[0], uids[-1]))
    count, digest = cur.fetchone()
    if count != len(uids) or digest != hashlib.sha256(data).hexdigest():
        return None
    return total - len(uids)


def _list_extra_rows(cur, table: Table, source, chk: TableCheck, report: dict) -> None:
    """Rows in the target that no source document explains (a second read of the source's ids)."""
    source_ids = {str(d.get("_id")) for d in source.iter_all(table.collection)}
    cur.execute(sql.SQL("SELECT id::text FROM {}").format(sql.Identifier(table.name)))
    for (u,) in cur.fetchall():
        try:
            oid = str(objectid_from_uuid(u))
        except IdFormatError:
            oid = None
        if oid not in source_ids:
            chk.extra += 1
            if len(report["extraRecords"]) < MAX_LISTED:
                report["extraRecords"].append({"tableName": table.name, "postgresUuid": u, "mongoId": oid})


def _jsonable(v: Any) -> Any:
    try:
        json.dumps(v)
        return v
    except (TypeError, ValueError):
        return repr(v)


def _orphans(mapping: Mapping, fk: dict[str, Any]):
    """Job: one foreign key's values that match no parent row (count, first 20)."""
    parent = mapping.tables[fk["references"]]

    def run(conn) -> tuple[str, Any]:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("SELECT c.{col}::text, count(*) OVER () FROM {t} c WHERE c.{col} IS NOT NULL AND NOT "
                                "EXISTS (SELECT 1 FROM {p} p WHERE p.{pk} = c.{col}) LIMIT 20").format(
                col=sql.Identifier(fk["columns"][0]), t=sql.Identifier(fk["table"]), p=sql.Identifier(parent.name),
                pk=sql.Identifier(parent.pk.name)))
            return "orphans", (fk, cur.fetchall())
    return run


def _merge_orphans(fk: dict[str, Any], rows: list[tuple], broken: list[dict], report: dict) -> int:
    if not rows:
        return 0
    n = rows[0][1]
    broken.append({"tableName": fk["table"], "foreignKeyField": fk["columns"][0],
                   "referencedTable": fk["references"], "orphanedCount": n})
    for value, _ in rows:
        if len(report["orphanedRecords"]) < MAX_LISTED:
            report["orphanedRecords"].append({"tableName": fk["table"], "foreignKeyField": fk["columns"][0],
                                              "foreignKeyValue": value, "referencedTable": fk["references"]})
    return n


_OID_PAIR = """CASE WHEN substring(uuid_send({l}) FROM 7 FOR 4) = '\\x80008000'::bytea
                    AND substring(uuid_send({r}) FROM 7 FOR 4) = '\\x80008000'::bytea
               THEN encode(substring(uuid_send({l}) FROM 1 FOR 6) || substring(uuid_send({l}) FROM 11)
                           || substring(uuid_send({r}) FROM 1 FOR 6) || substring(uuid_send({r}) FROM 11), 'hex')
               ELSE {l}::text || ' ' || {r}::text END"""


def _junction_rows(mapping: Mapping, j, expected: set[bytes]):
    """Job: a junction's rows against the union of both sides' arrays (expected, as 24 ObjectId bytes)."""
    lt, rt = mapping.tables[j.left.references], mapping.tables[j.right.references]

    pair = sql.SQL(_OID_PAIR).format(l=sql.Identifier(j.left.column), r=sql.Identifier(j.right.column))

    def run(conn) -> tuple[str, Any]:
        with conn.cursor() as cur:
            # The common case at once: the rows, sorted, hash as the expected links do.
            cur.execute(sql.SQL("SELECT count(*), encode(sha256(convert_to(coalesce(string_agg({p}, ',' ORDER BY {p} "
                                "COLLATE \"C\"), ''), 'UTF8')), 'hex') FROM {j}").format(p=pair, j=sql.Identifier(j.name)))
            count, digest = cur.fetchone()
            if count == len(expected) and digest == hashlib.sha256(
                    ",".join(sorted(p.hex() for p in expected)).encode()).hexdigest():
                return "junction", (j, {"expectedLinks": count, "actualRows": count, "missing": 0, "extra": 0,
                                        "droppedDangling": 0}, [])
            # Each row as the hex of its two ObjectIds, or as its UUID texts when this scheme did not make them.
            cur.execute(sql.SQL("SELECT {} FROM {}").format(pair, sql.Identifier(j.name)))
            texts = [t for (t,) in cur.fetchall()]
            actual = {bytes.fromhex(t) for t in texts if len(t) == 48}
            foreign = [t for t in texts if len(t) != 48]
            # An expected link absent from the target was dropped as dangling (an end absent or rejected,
            # logged by the migration) or is missing: ask the target about those ends only.
            absent = expected - actual
            present: set[bytes] = set()
            for table, ends in ((lt, {p[:12] for p in absent}), (rt, {p[12:] for p in absent})):
                if ends:
                    cur.execute(sql.SQL("SELECT id::text FROM {} WHERE id = ANY(%s::uuid[])").format(
                        sql.Identifier(table.name)), ([uuid_from_objectid(e) for e in ends],))
                    present |= {(table.name, objectid_from_uuid(u).binary) for (u,) in cur.fetchall()}
        missing = {p for p in absent if (lt.name, p[:12]) in present and (rt.name, p[12:]) in present}
        extra = actual - expected
        dropped = len(absent) - len(missing)
        stats = {"expectedLinks": len(expected) - dropped, "actualRows": len(texts), "missing": len(missing),
                 "extra": len(extra) + len(foreign), "droppedDangling": dropped}
        problems = [(kind, str(ObjectId(p[:12])), str(ObjectId(p[12:])))
                    for kind, pairs in (("missing", missing), ("extra", extra)) for p in list(pairs)[:20]]
        problems += [("extra", *t.split(" ")) for t in foreign[:20]]
        return "junction", (j, stats, problems)
    return run


def _merge_junction(j, stats: dict, problems: list[tuple], out: dict, report: dict) -> None:
    out[j.name] = stats
    for kind, left, right in problems:
        if len(report["junctionProblems"]) < MAX_LISTED:
            report["junctionProblems"].append({"junction": j.name, "problem": kind, j.left.column: left,
                                               j.right.column: right})


def _type_ranges(mapping: Mapping, t: Table):
    """Job: a table's dates inside years 1-9999 and enum values inside the mapping's lists, in one scan."""
    checks = []
    for c in t.columns:
        ident = sql.Identifier(c.name)
        if c.type == "timestamp":
            checks.append((c, sql.SQL("({c} < '0001-01-01' OR {c} >= '10000-01-01')").format(c=ident)))
        elif c.type == "enum":
            checks.append((c, sql.SQL("({}::text <> ALL({}))").format(ident, sql.Literal(list(mapping.enums[c.enum])))))

    def run(conn) -> tuple[str, Any]:
        found = []
        with conn.cursor() as cur:
            cur.execute(sql.SQL("SELECT {} FROM {}").format(
                sql.SQL(", ").join(sql.SQL("count(*) FILTER (WHERE {})").format(cond) for _, cond in checks),
                sql.Identifier(t.name)))
            counts = cur.fetchone()
            for (c, cond), n in zip(checks, counts, strict=True):
                if n:
                    cur.execute(sql.SQL("SELECT id::text, {}::text FROM {} WHERE {} LIMIT %s").format(
                        sql.Identifier(c.name), sql.Identifier(t.name), cond), (MAX_LISTED,))
                    found.append((c, n, cur.fetchall()))
        return "types", (t, found)
    return run


def _merge_types(t: Table, found: list[tuple], report: dict) -> int:
    errors = 0
    for c, n, rows in found:
        errors += n
        for u, value in rows:
            if len(report["typeErrors"]) < MAX_LISTED:
                report["typeErrors"].append({"tableName": t.name, "recordUuid": u, "fieldName": c.name,
                                             "expectedType": c.enum or c.type, "actualValue": value,
                                             "errorMessage": "value outside the type's valid range"})
    return errors


def _database_jobs(mapping: Mapping) -> list:
    """The checks PostgreSQL answers by itself: orphans per foreign key, type ranges, the schema."""
    jobs = [_orphans(mapping, fk) for fk in mapping.foreign_keys()]
    jobs += [_type_ranges(mapping, t) for t in mapping.tables.values()
             if any(c.type in ("timestamp", "enum") for c in t.columns)]
    jobs.append(lambda conn: ("schema", schema.describe(conn)))
    return jobs


def _merge_database(opts: ValidateOptions, mapping: Mapping, results: dict[str, list],
                    lists: dict[str, Any]) -> tuple[int, list[dict], dict[str, Any], int, list[str]]:
    """The database checks' results, in the mapping's order whatever order the jobs finished in."""
    orphans, broken, junctions, type_errors = 0, [], {}, 0
    by_fk = {fk["name"]: rows for fk, rows in results["orphans"]}
    for fk in mapping.foreign_keys():
        orphans += _merge_orphans(fk, by_fk[fk["name"]], broken, lists)
    by_junction = {j.name: (stats, problems) for j, stats, problems in results["junction"]}
    for j in mapping.junctions.values():
        _merge_junction(j, *by_junction[j.name], junctions, lists)
    by_table = {t.name: found for t, found in results["types"]}
    for t in mapping.tables.values():
        type_errors += _merge_types(t, by_table.get(t.name, []), lists)
    expected_schema = (json.loads(Path(opts.reference_schema).read_text()) if opts.reference_schema
                       else schema.expected_schema(mapping))
    return orphans, broken, junctions, type_errors, schema.diff_schemas(expected_schema, results["schema"][0])


def _read_only(opts: ValidateOptions):
    conn = pg_connect(opts.pg_uri, "mongo2pg-validate", settings=BULK_SESSION)
    conn.set_session(readonly=True)
    return conn


def _new_lists() -> dict[str, Any]:
    return {"fieldMismatches": [], "typeErrors": [], "typeErrorCount": 0, "orphanedRecords": [],
            "lostRecords": [], "extraRecords": [], "junctionProblems": []}


def _check_table_task(task: tuple) -> tuple[TableCheck, dict[str, Any], dict[str, set[bytes]]]:
    """One table in a worker process: its own source reader and read-only connection."""
    opts, mapping, table_name, sample_ids = task
    tune_gc_for_documents()
    source = open_source(opts.mongo_uri, opts.dump, opts.db)
    conn = _read_only(opts)
    lists: dict[str, Any] = _new_lists()
    junction_expected: dict[str, set[bytes]] = defaultdict(set)
    try:
        with conn.cursor() as cur:
            check = _check_table(cur, mapping, mapping.tables[table_name], source, ErrorLog(opts.error_log), lists,
                                 sample_ids, junction_expected)
    finally:
        conn.close()
        source.close()
    return check, lists, dict(junction_expected)


def _check_tables(opts: ValidateOptions, mapping: Mapping, source, rng: random.Random, lists: dict[str, Any],
                  junction_expected: dict[str, set[bytes]], alongside: Callable[[], None]) -> list[TableCheck]:
    """Every table's rows and fields, in parallel processes, while `alongside` runs in a thread of this
    one (started once the workers are forked: a fork must not copy a thread's connection mid-use);
    results merged in mapping order."""
    tasks = []
    for t in mapping.tables.values():
        sample_ids = None
        if opts.sample:
            ids = [str(d.get("_id")) for d in source.iter_all(t.collection)]
            sample_ids = set(rng.sample(ids, min(opts.sample, len(ids))))
        tasks.append((opts, mapping, t.name, sample_ids))
    workers = opts.worker_count()
    if workers > 1:
        # Biggest tables first keeps every worker busy to the end.
        order = sorted(range(len(tasks)), key=lambda i: -source.work_hint(mapping.tables[tasks[i][2]].collection))
        with fork_pool(min(workers, len(tasks))) as pool, ThreadPoolExecutor(1) as thread:
            beside = thread.submit(alongside)
            done = dict(zip(order, pool.imap(_check_table_task, [tasks[i] for i in order]), strict=True))
            beside.result()
        results = [done[i] for i in range(len(tasks))]
    else:
        alongside()
        results = [_check_table_task(task) for task in tasks]
    checks = []
    for check, part, junctions in results:
        checks.append(check)
        for key, value in part.items():
            if key == "typeErrorCount":
                lists[key] += value
            else:
                lists[key].extend(value[: MAX_LISTED - len(lists[key])])
        for name, links in junctions.items():
            junction_expected[name] |= links
    return checks


def validate(opts: ValidateOptions) -> dict[str, Any]:
    started = time.monotonic()
    mapping = load_mapping(opts.mapping)
    source = open_source(opts.mongo_uri, opts.dump, opts.db)
    log = ErrorLog(opts.error_log)
    lists: dict[str, Any] = _new_lists()
    rng = random.Random(opts.seed)
    junction_expected: dict[str, set[bytes]] = defaultdict(set)
    results: dict[str, list] = defaultdict(list)

    def database_checks(jobs: list, workers: int) -> None:
        for kind, payload in run_on_connections(lambda: _read_only(opts), jobs, workers):
            results[kind].append(payload)

    try:
        pg_connect(opts.pg_uri, "mongo2pg-validate").close()  # fail fast, with one clear line, before forking
        # The database's own checks need no source: one connection runs them while the tables are checked.
        checks = _check_tables(opts, mapping, source, rng, lists, junction_expected,
                               alongside=lambda: database_checks(_database_jobs(mapping), 1))
        database_checks([_junction_rows(mapping, j, junction_expected.get(j.name, set()))
                         for j in mapping.junctions.values()], opts.worker_count())
        orphans, broken, junctions, db_type_errors, schema_diffs = _merge_database(opts, mapping, results, lists)
    finally:
        source.close()
    seconds = time.monotonic() - started
    report = build_report(opts, mapping, checks, lists, orphans, broken, junctions, db_type_errors, schema_diffs,
                          seconds, log, source.label)
    write_report(Path(opts.report), report)
    return report


def build_report(opts, mapping, checks, lists, orphans, broken, junctions, db_type_errors, schema_diffs, seconds,
                 log, source_label) -> dict[str, Any]:
    fields = sum(c.fields_checked for c in checks)
    mism = sum(c.fields_mismatched for c in checks)
    match_pct = 100.0 * (fields - mism) / fields if fields else 100.0
    rows = sum(c.rows_checked for c in checks)
    count_ok = all(c.lost == 0 and c.extra == 0 and c.unexplained_rejects == 0 and c.source == c.target + c.rejected
                   for c in checks)
    field_ok = (mism == 0) if opts.strict else match_pct >= opts.min_match
    field_ok = field_ok and match_pct >= opts.min_match
    junction_ok = all(j["missing"] == 0 and j["extra"] == 0 for j in junctions.values())
    ri_ok = orphans == 0 and junction_ok
    type_count = lists["typeErrorCount"] + db_type_errors
    type_ok = type_count == 0
    schema_ok = not schema_diffs
    layers = {"rowCount": count_ok, "fieldMatch": field_ok, "referentialIntegrity": ri_ok, "dataTypes": type_ok,
              "schema": schema_ok}
    status = "PASS" if all(layers.values()) else "FAIL"
    return {
        "timestamp": datetime.now(UTC).isoformat(),
        "overallStatus": status,
        "failedLayers": [k for k, ok in layers.items() if not ok],
        "source": source_label, "target": redact_uri(opts.pg_uri), "mapping": mapping.name,
        "mode": f"sample of {opts.sample} per table (seed {opts.seed})" if opts.sample else "every row",
        "seconds": round(seconds, 2), "rowsChecked": rows,
        "rowsPerSecond": round(rows / seconds) if seconds else None,
        "errorLog": {"path": opts.error_log, "present": log.present,
                     "rejectedRecords": sum(len(v) for v in log.rejected.values())},
        "summary": {"totalTables": len(checks) + len(junctions), "tablesValidated": len(checks),
                    "tablesPassed": sum(1 for c in checks if _table_ok(c)),
                    "tablesFailed": sum(1 for c in checks if not _table_ok(c)),
                    "totalRecords": sum(c.source for c in checks), "recordsValidated": rows,
                    "recordsMatched": rows - len({(m["tableName"], m["mongoId"]) for m in lists["fieldMismatches"]}),
                    "fieldsCompared": fields, "fieldsMismatched": mism, "matchPercentage": round(match_pct, 4)},
        "rowCountValidation": {"status": _pf(count_ok), "discrepancies": [
            {"tableName": c.table, "mongoCount": c.source, "postgresCount": c.target, "rejected": c.rejected,
             "difference": c.target + c.rejected - c.source, "lost": c.lost, "extra": c.extra}
            for c in checks if not _table_ok(c)], "lostRecords": lists["lostRecords"],
            "extraRecords": lists["extraRecords"]},
        "sampleRecordValidation": {"status": _pf(field_ok), "fieldMismatches": lists["fieldMismatches"],
                                   "matchPercentage": round(match_pct, 4), "strict": opts.strict,
                                   "minMatch": opts.min_match},
        "referentialIntegrityValidation": {"status": _pf(ri_ok), "orphanedRecords": lists["orphanedRecords"],
                                           "brokenForeignKeys": broken, "junctions": junctions,
                                           "junctionProblems": lists["junctionProblems"]},
        "dataTypeValidation": {"status": _pf(type_ok), "typeErrorCount": type_count,
                               "typeErrors": lists["typeErrors"]},
        "schemaValidation": {"status": _pf(schema_ok), "differences": schema_diffs},
        "detailedResults": [
            {"tableName": c.table, "rowCount": {"mongoCount": c.source, "postgresCount": c.target,
                                                "rejected": c.rejected, "match": c.source == c.target + c.rejected},
             "sampleValidation": {"sampleSize": c.rows_checked, "fieldsCompared": c.fields_checked,
                                  "mismatched": c.fields_mismatched,
                                  "matchPercentage": round(100.0 * (c.fields_checked - c.fields_mismatched)
                                                           / c.fields_checked, 4) if c.fields_checked else 100.0},
             "status": _pf(_table_ok(c))} for c in checks],
    }


def _table_ok(c: TableCheck) -> bool:
    return (c.lost == 0 and c.extra == 0 and c.unexplained_rejects == 0 and c.fields_mismatched == 0
            and c.source == c.target + c.rejected)


def _pf(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def write_report(path: Path, report: dict[str, Any]) -> None:
    for target, text in ((path, json.dumps(report, indent=1, default=str)),
                         (path.with_suffix(".md"), markdown_summary(report))):
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)


def markdown_summary(r: dict[str, Any]) -> str:
    s = r["summary"]
    lines = [f"# Migration validation: {r['overallStatus']}", "",
             f"{r['timestamp']} - {r['mode']} - {r['rowsChecked']:,} rows checked in {r['seconds']}s "
             f"({r['rowsPerSecond'] or 0:,} rows/s)", "", "| layer | status | figures |", "|---|---|---|",
             f"| Row counts | {r['rowCountValidation']['status']} | {s['totalRecords']:,} source records; "
             f"{len(r['rowCountValidation']['discrepancies'])} tables with discrepancies |",
             f"| Field-level match | {r['sampleRecordValidation']['status']} | {s['fieldsCompared']:,} fields, "
             f"{s['fieldsMismatched']:,} mismatched ({s['matchPercentage']}%) |",
             f"| Referential integrity | {r['referentialIntegrityValidation']['status']} | "
             f"{sum(b['orphanedCount'] for b in r['referentialIntegrityValidation']['brokenForeignKeys'])} orphans; "
             f"{len(r['referentialIntegrityValidation']['junctionProblems'])} junction problems listed |",
             f"| Type conversion | {r['dataTypeValidation']['status']} | {r['dataTypeValidation']['typeErrorCount']} "
             "type errors |",
             f"| Schema | {r['schemaValidation']['status']} | {len(r['schemaValidation']['differences'])} differences |",
             "", "| table | source | target | rejected | fields checked | mismatched | status |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for d in r["detailedResults"]:
        lines.append(f"| {d['tableName']} | {d['rowCount']['mongoCount']:,} | {d['rowCount']['postgresCount']:,} | "
                     f"{d['rowCount']['rejected']:,} | {d['sampleValidation']['fieldsCompared']:,} | "
                     f"{d['sampleValidation']['mismatched']:,} | {d['status']} |")
    for title, key, sub in (("Field mismatches", "sampleRecordValidation", "fieldMismatches"),
                            ("Orphaned records", "referentialIntegrityValidation", "orphanedRecords"),
                            ("Junction problems", "referentialIntegrityValidation", "junctionProblems"),
                            ("Lost records", "rowCountValidation", "lostRecords"),
                            ("Extra records", "rowCountValidation", "extraRecords")):
        items = r[key][sub]
        if items:
            lines += ["", f"## {title} (first {min(len(items), 20)})", ""]
            lines += [f"- `{json.dumps(i, default=str)}`" for i in items[:20]]
    if r["schemaValidation"]["differences"]:
        lines += ["", "## Schema differences", ""] + [f"- {d}" for d in r["schemaValidation"]["differences"]]
    return "\n".join(lines) + "\n"
