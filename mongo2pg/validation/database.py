"""The checks PostgreSQL answers by itself, side by side with the per-table proof: orphans per foreign
key, every junction's rows against the union of both sides' arrays, type ranges, and the schema."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bson import ObjectId
from psycopg2 import sql

from .. import schema
from ..ids import MIDDLE_HEX, objectid_from_uuid, uuid_from_objectid
from ..mapping import Mapping, Table
from .options import ValidateOptions
from .report import MAX_LISTED


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


# A junction row's two ObjectIds as 48 hex digits (left, right), by ids' rule read backwards in SQL (its
# middle from ids.MIDDLE_HEX; tests/test_ids.py runs it against ids); a UUID not made by the rule as text.
_OID_PAIR = """CASE WHEN substring(uuid_send({l}) FROM 7 FOR 4) = '\\xMIDDLE'::bytea
                    AND substring(uuid_send({r}) FROM 7 FOR 4) = '\\xMIDDLE'::bytea
               THEN encode(substring(uuid_send({l}) FROM 1 FOR 6) || substring(uuid_send({l}) FROM 11)
                           || substring(uuid_send({r}) FROM 1 FOR 6) || substring(uuid_send({r}) FROM 11), 'hex')
               ELSE {l}::text || ' ' || {r}::text END""".replace("MIDDLE", MIDDLE_HEX)


def link_pair(j) -> sql.Composable:
    """A junction row's two ends as the hex of their ObjectIds (or UUID texts), in SQL."""
    return sql.SQL(_OID_PAIR).format(l=sql.Identifier(j.left.column), r=sql.Identifier(j.right.column))


def junction_rows(mapping: Mapping, j, expected: set[bytes]):
    """Job: a junction's rows against the union of both sides' arrays (expected, as 24 ObjectId bytes)."""
    pair = link_pair(j)

    def run(conn) -> tuple[str, Any]:
        with conn.cursor() as cur:
            # The common case at once: the rows, sorted, hash as the expected links do.
            cur.execute(sql.SQL("SELECT count(*), encode(sha256(convert_to(coalesce(string_agg({p}, ',' ORDER BY {p} "
                                "COLLATE \"C\"), ''), 'UTF8')), 'hex') FROM {j}").format(p=pair, j=sql.Identifier(j.name)))
            count, digest = cur.fetchone()
            if count == len(expected) and digest == hashlib.sha256(
                    ",".join(sorted(p.hex() for p in expected)).encode()).hexdigest():
                return "junction", (j, {"expectedLinks": count, "actualRows": count, "missing": 0, "extra": 0,
                                        "droppedDangling": 0}, [], LinkSets())
            cur.execute(sql.SQL("SELECT {} FROM {}").format(pair, sql.Identifier(j.name)))
            return "junction", (j, *compare_links(cur, mapping, j, [t for (t,) in cur.fetchall()], expected))
    return run


@dataclass
class LinkSets:
    """A junction check's links by what became of them (24 ObjectId bytes each), complete: a baseline's record."""
    missing: set[bytes] = field(default_factory=set)
    extra: set[bytes] = field(default_factory=set)
    dropped: set[bytes] = field(default_factory=set)  # an end absent or rejected: dropped as dangling


def compare_links(cur, mapping: Mapping, j, texts: list[str], expected: set[bytes]
                  ) -> tuple[dict[str, int], list[tuple], LinkSets]:
    """A junction's rows (each as link_pair's text) against the links expected of them."""
    lt, rt = mapping.tables[j.left.references], mapping.tables[j.right.references]
    # Each row as the hex of its two ObjectIds, or as its UUID texts when this scheme did not make them.
    actual = {bytes.fromhex(t) for t in texts if len(t) == 48}
    foreign = [t for t in texts if len(t) != 48]
    # An expected link absent from the target was dropped as dangling (an end absent or rejected,
    # logged by the migration) or is missing: ask the target about those ends only.
    absent = expected - actual
    present: set[tuple[str, bytes]] = set()
    for table, ends in ((lt, {p[:12] for p in absent}), (rt, {p[12:] for p in absent})):
        if ends:
            cur.execute(sql.SQL("SELECT id::text FROM {} WHERE id = ANY(%s::uuid[])").format(
                sql.Identifier(table.name)), ([uuid_from_objectid(e) for e in ends],))
            present |= {(table.name, objectid_from_uuid(u).binary) for (u,) in cur.fetchall()}
    missing = {p for p in absent if (lt.name, p[:12]) in present and (rt.name, p[12:]) in present}
    extra = actual - expected
    dropped = absent - missing
    stats = {"expectedLinks": len(expected) - len(dropped), "actualRows": len(texts), "missing": len(missing),
             "extra": len(extra) + len(foreign), "droppedDangling": len(dropped)}
    problems = [(kind, str(ObjectId(p[:12])), str(ObjectId(p[12:])))
                for kind, pairs in (("missing", missing), ("extra", extra)) for p in list(pairs)[:20]]
    problems += [("extra", *t.split(" ")) for t in foreign[:20]]
    return stats, problems, LinkSets(missing, extra, dropped)


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


def database_jobs(mapping: Mapping) -> list:
    """The checks PostgreSQL answers by itself: orphans per foreign key, type ranges, the schema."""
    jobs = [_orphans(mapping, fk) for fk in mapping.foreign_keys()]
    jobs += [_type_ranges(mapping, t) for t in mapping.tables.values()
             if any(c.type in ("timestamp", "enum") for c in t.columns)]
    jobs.append(lambda conn: ("schema", schema.describe(conn)))
    return jobs


def merge_database(opts: ValidateOptions, mapping: Mapping, results: dict[str, list],
                    lists: dict[str, Any]) -> tuple[int, list[dict], dict[str, Any], int, list[str]]:
    """The database checks' results, in the mapping's order whatever order the jobs finished in."""
    orphans, broken, junctions, type_errors = 0, [], {}, 0
    by_fk = {fk["name"]: rows for fk, rows in results["orphans"]}
    for fk in mapping.foreign_keys():
        orphans += _merge_orphans(fk, by_fk[fk["name"]], broken, lists)
    by_junction = {j.name: (stats, problems) for j, stats, problems, _ in results["junction"]}
    for j in mapping.junctions.values():
        _merge_junction(j, *by_junction[j.name], junctions, lists)
    by_table = {t.name: found for t, found in results["types"]}
    for t in mapping.tables.values():
        type_errors += _merge_types(t, by_table.get(t.name, []), lists)
    expected_schema = (json.loads(Path(opts.reference_schema).read_text()) if opts.reference_schema
                       else schema.expected_schema(mapping))
    return orphans, broken, junctions, type_errors, schema.diff_schemas(expected_schema, results["schema"][0])
