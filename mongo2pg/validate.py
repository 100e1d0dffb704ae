"""Validation of every record, independent of the transform that loaded it.

The expected target value is computed here from the source value and the mapping's
declared type (never by calling mongo2pg.transform), and compared with what
PostgreSQL returns as text. Five layers: row counts (with rejects accounted by id),
field-level match, referential integrity (including junction completeness against
the union of both sides' arrays), type conversion, and schema.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bson import DatetimeMS, Decimal128, ObjectId, json_util
from psycopg2 import sql

from . import schema
from .connect import pg_connect
from .ids import IdFormatError, objectid_from_uuid
from .mapping import Column, Mapping, Table, load_mapping
from .readers import open_source
from .redact import redact_uri

CHUNK = 20_000
MAX_LISTED = 200  # per list in the report; counts are always complete
_INT_TEXT = re.compile(r"^[+-]?\d+$")
_RELAXED = json_util.JSONOptions(json_mode=json_util.JSONMode.RELAXED, tz_aware=True)
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


class NoValue(Exception):
    """The source value cannot be represented: the record must have been rejected."""


def _select_expr(col: Column) -> sql.Composable:
    ident = sql.Identifier(col.name)
    if col.type == "timestamp":
        return sql.SQL("to_char({}, 'YYYY-MM-DD HH24:MI:SS.MS')").format(ident)
    if col.type in ("text[]", "uuid[]", "integer[]"):
        return sql.SQL("array_to_json({})::text").format(ident)
    return sql.SQL("{}::text").format(ident)


def _ms_text(dt: datetime) -> str:
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d} {dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}." \
           f"{dt.microsecond // 1000:03d}"


def _oid_hex(v: Any) -> str:
    if isinstance(v, ObjectId):
        return str(v)
    if isinstance(v, str) and ObjectId.is_valid(v) and len(v) == 24:
        return v.lower()
    raise NoValue(f"not an ObjectId: {v!r}")


def expected_text(col: Column, v: Any, enums: dict[str, tuple[str, ...]]) -> Any:
    """What PostgreSQL must return (as compared by `matches`) for source value v (not None)."""
    t = col.type
    if t == "uuid":
        return _oid_hex(v)
    if t == "text":
        if isinstance(v, bool) or not isinstance(v, str | int | float | Decimal128 | ObjectId):
            raise NoValue(f"{type(v).__name__} in a text column")
        return str(v)  # also plain text of str subclasses (BSON Code)
    if t in ("integer", "bigint"):
        if isinstance(v, bool):
            raise NoValue("boolean in a number column")
        if isinstance(v, str) and _INT_TEXT.match(v.strip()):
            return int(v.strip())
        if isinstance(v, Decimal128):
            v = v.to_decimal()
        if isinstance(v, int | float) or hasattr(v, "to_integral_value"):
            n = int(v)
            if n != v:
                raise NoValue("non-integral number")
            return n
        raise NoValue(f"{type(v).__name__} in a number column")
    if t == "double":
        return float(v.to_decimal()) if isinstance(v, Decimal128) else float(v)
    if t == "boolean":
        if not isinstance(v, bool):
            raise NoValue("not a boolean")
        return "true" if v else "false"
    if t == "timestamp":
        if isinstance(v, DatetimeMS):
            raise NoValue("date outside years 1-9999")
        if isinstance(v, str):
            v = datetime.fromisoformat(v.strip().replace("Z", "+00:00"))
            v = v if v.tzinfo else v.replace(tzinfo=UTC)
        if not isinstance(v, datetime):
            raise NoValue("not a date")
        return _ms_text(v)
    if t == "jsonb":
        return json.loads(json_util.dumps(v, json_options=_RELAXED))
    if t == "enum":
        if v not in enums[col.enum]:
            raise NoValue("not an enum value")
        return v
    if t in ("text[]", "uuid[]", "integer[]"):
        if not isinstance(v, list):
            raise NoValue("not an array")
        if t == "uuid[]":
            return [None if e is None else _oid_hex(e) for e in v]
        if t == "integer[]":
            return [None if e is None else int(e) for e in v]
        return [None if e is None else (e if isinstance(e, str) else str(e)) for e in v]
    raise NoValue(f"unknown type {t}")


def matches(col: Column, expected: Any, actual: str | None) -> bool:
    if actual is None:
        return expected is None
    if expected is None:
        return False
    t = col.type
    if t == "uuid":
        try:
            return str(objectid_from_uuid(actual)) == expected
        except IdFormatError:
            return False
    if t in ("integer", "bigint"):
        return int(actual) == expected
    if t == "double":
        a = float(actual)
        return a == expected or (math.isnan(a) and math.isnan(expected))
    if t in ("jsonb", "text[]", "integer[]"):
        return json.loads(actual) == expected
    if t == "uuid[]":
        got = json.loads(actual)
        try:
            return [None if g is None else str(objectid_from_uuid(g)) for g in got] == expected
        except IdFormatError:
            return False
    return actual == expected


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
        return _ms_text(oid.generation_time)
    return expected_text(col, col.fill, enums)


def _check_table(cur, mapping: Mapping, table: Table, source, log: ErrorLog, report: dict, sample_ids: set | None,
                 junction_expected: dict[str, set[bytes]]) -> TableCheck:
    chk = TableCheck(table.name)
    cols = [c for c in table.columns if not c.primary_key]
    select = sql.SQL("SELECT {} FROM {} WHERE id = ANY(%s::uuid[])").format(
        sql.SQL(", ").join([sql.SQL("id::text")] + [_select_expr(c) for c in cols]), sql.Identifier(table.name))
    rejected = log.rejected.get(table.name, set())
    fixed = {c.name: log.fixed.get((table.name, c.source), set()) for c in cols}
    junction_sources = [(j, s) for j, s in mapping.junction_sources(table.collection)]
    mismatches = report["fieldMismatches"]
    type_errors = report["typeErrors"]
    seen_ids: set[str] = set()
    chunk: list[dict] = []

    def flush() -> None:
        uuids = []
        for d in chunk:
            _id = d.get("_id")
            if isinstance(_id, ObjectId):
                b = _id.binary.hex()
                uuids.append(f"{b[0:8]}-{b[8:12]}-8000-8000-{b[12:24]}")
        cur.execute(select, (uuids,))
        rows = {objectid_from_uuid(r[0]).binary: r for r in cur.fetchall()}
        for d in chunk:
            _id = d.get("_id")
            key = str(_id)
            seen_ids.add(key)
            row = rows.get(_id.binary) if isinstance(_id, ObjectId) else None
            if row is None:
                if key not in rejected:
                    chk.lost += 1
                    if len(report["lostRecords"]) < MAX_LISTED:
                        report["lostRecords"].append({"tableName": table.name, "mongoId": key,
                                                      "reason": "not in target and not in the reject log"})
                continue
            if key in rejected:
                chk.unexplained_rejects += 1
                if len(report["lostRecords"]) < MAX_LISTED:
                    report["lostRecords"].append({"tableName": table.name, "mongoId": key, "reason":
                                                  "logged as rejected but present in the target"})
            chk.rows_checked += 1
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
                chk.fields_checked += 1
                if not ok:
                    chk.fields_mismatched += 1
                    entry = {"tableName": table.name, "mongoId": key, "postgresUuid": row[0], "fieldName": c.name,
                             "expectedValue": _jsonable(exp), "actualValue": actual,
                             "mismatchType": "value" if actual is not None else "missing"}
                    if len(mismatches) < MAX_LISTED:
                        mismatches.append(entry)
                    if c.type in ("timestamp", "enum", "jsonb") or c.type in NUMBER_TYPES:
                        report["typeErrorCount"] += 1
                        if len(type_errors) < MAX_LISTED:
                            type_errors.append({"tableName": table.name, "recordUuid": row[0], "fieldName": c.name,
                                                "expectedType": c.enum or c.type, "actualValue": actual,
                                                "errorMessage": f"expected {_jsonable(exp)!r}"})
            for j, s in junction_sources:
                arr = d.get(s.field)
                if isinstance(arr, list):
                    exp_set = junction_expected[j.name]
                    for e in arr:
                        if isinstance(e, ObjectId):
                            exp_set.add(_id.binary + e.binary if s.holds == "right" else e.binary + _id.binary)
        chunk.clear()

    docs = source.iter_all(table.collection)
    for d in docs:
        chk.source += 1
        if sample_ids is not None and str(d.get("_id")) not in sample_ids:
            # Still collect junction links from every document: completeness needs all of them.
            for j, s in junction_sources:
                arr = d.get(s.field)
                if isinstance(arr, list) and isinstance(d.get("_id"), ObjectId):
                    for e in arr:
                        if isinstance(e, ObjectId):
                            junction_expected[j.name].add(d["_id"].binary + e.binary if s.holds == "right"
                                                          else e.binary + d["_id"].binary)
            seen_ids.add(str(d.get("_id")))
            continue
        chunk.append(d)
        if len(chunk) >= CHUNK:
            flush()
    if chunk:
        flush()
    cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table.name)))
    chk.target = cur.fetchone()[0]
    chk.rejected = len(rejected)
    if chk.target + len(rejected & seen_ids) != chk.source or chk.target > chk.source - len(rejected & seen_ids):
        # Find rows in the target that no source document explains.
        cur.execute(sql.SQL("SELECT id::text FROM {}").format(sql.Identifier(table.name)))
        for (u,) in cur.fetchall():
            try:
                oid = str(objectid_from_uuid(u))
            except IdFormatError:
                oid = None
            if oid not in seen_ids:
                chk.extra += 1
                if len(report["extraRecords"]) < MAX_LISTED:
                    report["extraRecords"].append({"tableName": table.name, "postgresUuid": u, "mongoId": oid})
    return chk


def _jsonable(v: Any) -> Any:
    try:
        json.dumps(v)
        return v
    except (TypeError, ValueError):
        return repr(v)


def _check_references(cur, mapping: Mapping, report: dict) -> tuple[int, list[dict]]:
    orphans_total = 0
    broken = []
    for fk in mapping.foreign_keys():
        parent = mapping.tables[fk["references"]]
        cur.execute(sql.SQL("SELECT c.{col}::text, count(*) OVER () FROM {t} c WHERE c.{col} IS NOT NULL AND NOT EXISTS "
                            "(SELECT 1 FROM {p} p WHERE p.{pk} = c.{col}) LIMIT 20").format(
            col=sql.Identifier(fk["columns"][0]), t=sql.Identifier(fk["table"]), p=sql.Identifier(parent.name),
            pk=sql.Identifier(parent.pk.name)))
        rows = cur.fetchall()
        if rows:
            n = rows[0][1]
            orphans_total += n
            broken.append({"tableName": fk["table"], "foreignKeyField": fk["columns"][0],
                           "referencedTable": fk["references"], "orphanedCount": n})
            for value, _ in rows:
                if len(report["orphanedRecords"]) < MAX_LISTED:
                    report["orphanedRecords"].append({"tableName": fk["table"], "foreignKeyField": fk["columns"][0],
                                                      "foreignKeyValue": value, "referencedTable": fk["references"]})
    return orphans_total, broken


def _check_junctions(cur, mapping: Mapping, expected: dict[str, set[bytes]], report: dict) -> dict[str, Any]:
    out = {}
    for j in mapping.junctions.values():
        exp = expected.get(j.name, set())
        lt, rt = mapping.tables[j.left.references], mapping.tables[j.right.references]
        # Links whose end is not in the target (absent or rejected) are expected to be dropped and logged.
        cur.execute(sql.SQL("SELECT id::text FROM {}").format(sql.Identifier(lt.name)))
        left_ids = {objectid_from_uuid(r[0]).binary for r in cur.fetchall()}
        cur.execute(sql.SQL("SELECT id::text FROM {}").format(sql.Identifier(rt.name)))
        right_ids = {objectid_from_uuid(r[0]).binary for r in cur.fetchall()}
        resolvable = {p for p in exp if p[:12] in left_ids and p[12:] in right_ids}
        cur.execute(sql.SQL("SELECT {}::text, {}::text FROM {}").format(
            sql.Identifier(j.left.column), sql.Identifier(j.right.column), sql.Identifier(j.name)))
        actual = set()
        for lu, ru in cur.fetchall():
            actual.add(objectid_from_uuid(lu).binary + objectid_from_uuid(ru).binary)
        missing = resolvable - actual
        extra = actual - resolvable
        out[j.name] = {"expectedLinks": len(resolvable), "actualRows": len(actual), "missing": len(missing),
                       "extra": len(extra), "droppedDangling": len(exp) - len(resolvable)}
        for kind, pairs in (("missing", missing), ("extra", extra)):
            for p in list(pairs)[:20]:
                if len(report["junctionProblems"]) < MAX_LISTED:
                    report["junctionProblems"].append({"junction": j.name, "problem": kind,
                                                       j.left.column: str(ObjectId(p[:12])),
                                                       j.right.column: str(ObjectId(p[12:]))})
    return out


def _check_types_in_db(cur, mapping: Mapping, report: dict) -> int:
    """Dates inside years 1-9999 and enum values inside the mapping's lists, straight from the target."""
    errors = 0
    for t in mapping.tables.values():
        for c in t.columns:
            if c.type == "timestamp":
                cur.execute(sql.SQL("SELECT id::text, {c}::text FROM {t} WHERE {c} < '0001-01-01' OR {c} >= '10000-01-01' "
                                    "LIMIT 20").format(c=sql.Identifier(c.name), t=sql.Identifier(t.name)))
            elif c.type == "enum":
                cur.execute(sql.SQL("SELECT id::text, {c}::text FROM {t} WHERE {c}::text <> ALL(%s)").format(
                    c=sql.Identifier(c.name), t=sql.Identifier(t.name)), (list(mapping.enums[c.enum]),))
            else:
                continue
            for u, value in cur.fetchall():
                errors += 1
                if len(report["typeErrors"]) < MAX_LISTED:
                    report["typeErrors"].append({"tableName": t.name, "recordUuid": u, "fieldName": c.name,
                                                 "expectedType": c.enum or c.type, "actualValue": value,
                                                 "errorMessage": "value outside the type's valid range"})
    return errors


def _new_lists() -> dict[str, Any]:
    return {"fieldMismatches": [], "typeErrors": [], "typeErrorCount": 0, "orphanedRecords": [],
            "lostRecords": [], "extraRecords": [], "junctionProblems": []}


def _check_table_task(task: tuple) -> tuple[TableCheck, dict[str, Any], dict[str, set[bytes]]]:
    """One table in a worker process: its own source reader and read-only connection."""
    opts, table_name, sample_ids = task
    mapping = load_mapping(opts.mapping)
    source = open_source(opts.mongo_uri, opts.dump, opts.db)
    conn = pg_connect(opts.pg_uri, "mongo2pg-validate")
    conn.set_session(readonly=True)
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
                  junction_expected: dict[str, set[bytes]]) -> list[TableCheck]:
    """Every table's rows and fields, in parallel processes; results merged in mapping order."""
    tasks = []
    for t in mapping.tables.values():
        sample_ids = None
        if opts.sample:
            ids = [str(d.get("_id")) for d in source.iter_all(t.collection)]
            sample_ids = set(rng.sample(ids, min(opts.sample, len(ids))))
        tasks.append((opts, t.name, sample_ids))
    workers = opts.workers or min(os.cpu_count() or 1, 4)
    if workers > 1:
        import multiprocessing as mp

        # Biggest tables first keeps every worker busy to the end.
        order = sorted(range(len(tasks)), key=lambda i: -source.count(mapping.tables[tasks[i][1]].collection))
        with mp.get_context("fork").Pool(min(workers, len(tasks))) as pool:
            done = dict(zip(order, pool.imap(_check_table_task, [tasks[i] for i in order]), strict=True))
        results = [done[i] for i in range(len(tasks))]
    else:
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
    conn = None
    try:
        pg_connect(opts.pg_uri, "mongo2pg-validate").close()  # fail fast, with one clear line, before forking
        checks = _check_tables(opts, mapping, source, rng, lists, junction_expected)
        conn = pg_connect(opts.pg_uri, "mongo2pg-validate")
        conn.set_session(readonly=True)
        with conn.cursor() as cur:
            orphans, broken = _check_references(cur, mapping, lists)
            junctions = _check_junctions(cur, mapping, junction_expected, lists)
            db_type_errors = _check_types_in_db(cur, mapping, lists)
            expected_schema = (json.loads(Path(opts.reference_schema).read_text()) if opts.reference_schema
                               else schema.expected_schema(mapping))
            schema_diffs = schema.diff_schemas(expected_schema, schema.describe(conn))
    finally:
        if conn is not None:
            conn.close()
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
