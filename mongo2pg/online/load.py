"""The catch-up's loads, a batch at a time: the rules of remigrate (mongo2pg/migration/remigrate.py), in
statements over the whole batch instead of a savepoint per record, so a backlog of thousands drains in
seconds.

Per table, parents first: the batch's documents through the table's transform (a document it refuses is a
reject with its reason, and the row it had is removed: the table holds the source as it is now); the rows
staged by COPY; each reference to a row that does not exist settled by its column's policy (set NULL, or the
record rejected and its row removed), logged as the bulk's settle step logs it; the rows upserted in place
(their children keep their references); the junction rows of each document made exactly the links its
arrays or the other side's arrays hold. A row new to the target may be the parent that records lost while it
was missing: those are loaded again in the next round, as remigrate does.

PostgreSQL refusing the batch (a unique index, a check) returns None: the caller loads the same documents
one by one through remigrate, which names the record PostgreSQL refuses."""

from __future__ import annotations

import io
from collections import defaultdict
from typing import Any

import psycopg2
from psycopg2 import sql
from psycopg2.extras import execute_values

from ..ids import document_id, row_id, uuid_from_objectid
from ..issues import FIXUP, REJECT, REMIGRATED, Issue
from ..mapping import Mapping, Table
from ..migration.remigrate import Outcome, _Finder, _prime
from ..migration.settle import dangling_issue
from ..migration.state import STATE
from ..transform.links import own_links
from ..transform.table import TableTransform


def load_batch(conn, cur, source, mapping: Mapping, wanted: list[tuple[Table, Any]], note: str,
               removed: list[tuple[Table, Any]]) -> Outcome | None:
    """Load `wanted` (table, _id) in the open transaction; `removed` gets the (table, _id) whose rows must go
    (rejected now). None when PostgreSQL refused the batch (rolled back to where it began)."""
    out = Outcome()
    finder = _Finder(source)
    _prime(finder, mapping, wanted)
    cur.execute("SAVEPOINT m2p_online_batch")
    try:
        seen: set[tuple[str, str]] = set()
        round_ = wanted
        while round_:
            by_table: dict[str, list[Any]] = defaultdict(list)
            for table, _id in round_:
                if (table.name, str(_id)) not in seen:
                    seen.add((table.name, str(_id)))
                    by_table[table.name].append(_id)
            round_ = []
            for tname in [t for t in mapping.tables if t in by_table]:  # the mapping's order: parents first
                table = mapping.tables[tname]
                new = _load_table(cur, source, finder, mapping, table, by_table[tname], note, out, removed)
                round_ += _orphans(cur, finder, mapping, table, new)
    except (psycopg2.IntegrityError, psycopg2.DataError) as exc:
        cur.execute("ROLLBACK TO SAVEPOINT m2p_online_batch")
        del exc
        return None
    cur.execute("RELEASE SAVEPOINT m2p_online_batch")
    return out


def _load_table(cur, source, finder: _Finder, mapping: Mapping, table: Table, ids: list[Any], note: str,
                out: Outcome, removed: list[tuple[Table, Any]]) -> list[Any]:
    """The table's documents of the batch loaded; the _ids whose rows are new to the target."""
    docs = source.fetch(table.collection, {str(i) for i in ids})
    out.not_in_source += [f"{table.name} {i}" for i in ids if str(i) not in docs]
    transform = TableTransform(mapping, table)
    result = transform.convert_batch([docs[str(i)] for i in ids if str(i) in docs])
    kept = {str(d["_id"]): d for d in result.docs if isinstance(d, dict)}
    for issue in result.issues:
        if issue.severity == REJECT and issue.source_id is not None and issue.source_id not in kept:
            out.rejected.append(issue)
            removed.append((table, docs[issue.source_id]["_id"]))
    issues = list(result.issues)
    if not result.lines:
        out.issues += issues
        return []
    _stage(cur, table, transform.columns, result.lines)
    for key in _settle_references(cur, mapping, table, issues):
        out.rejected.append(next(i for i in reversed(issues) if i.source_id == key))
        removed.append((table, kept.pop(key)["_id"]))
    new = _upsert(cur, table)
    logged = _logged(cur, table.name, list(kept))
    for key in kept:
        out.loaded.append(f"{table.name} {key}")
    # the remigrated entry first: it makes what the log said of the record past, not this load's fix-ups
    out.issues += [Issue(FIXUP, table.name, k, row_id(kept[k]["_id"]), REMIGRATED, None, note) for k in kept
                   if k in logged]
    out.issues += issues
    for j in mapping.junctions.values():
        if table.name in (j.left.references, j.right.references):
            _relink(cur, finder, mapping, j, table, list(kept.values()))
    return [kept[k]["_id"] for k in new if k in kept]


def _stage(cur, table: Table, columns: list[str], lines: list[str]) -> None:
    cur.execute("DROP TABLE IF EXISTS pg_temp.m2p_online_stage")
    cur.execute(sql.SQL("CREATE TEMP TABLE m2p_online_stage (LIKE {}) ON COMMIT DROP").format(
        sql.Identifier(table.name)))
    cur.copy_expert(sql.SQL("COPY m2p_online_stage ({}) FROM STDIN").format(
        sql.SQL(", ").join(sql.Identifier(c) for c in columns)), io.StringIO("".join(lines)))


def _settle_references(cur, mapping: Mapping, table: Table, issues: list[Issue]) -> list[str]:
    """Each staged reference to a row that does not exist, by its column's policy (as the bulk's settle step):
    a fix-up for each set to NULL, a reject for each record refused (its staged row deleted; its key
    returned)."""
    refused: list[str] = []
    pk = sql.Identifier(table.pk.name)
    for c in table.columns:
        if not c.references or c.on_dangling == "keep":
            continue
        parent = mapping.tables[c.references]
        col = sql.Identifier(c.name)
        # a row of the same batch may be the parent (a self-reference)
        same = (sql.SQL(" AND NOT EXISTS (SELECT 1 FROM m2p_online_stage s2 WHERE s2.{} = s.{})").format(pk, col)
                if parent.name == table.name else sql.SQL(""))
        cur.execute(sql.SQL("SELECT s.{pk}::text, s.{c}::text FROM m2p_online_stage s WHERE s.{c} IS NOT NULL AND "
                            "NOT EXISTS (SELECT 1 FROM {p} p WHERE p.{ppk} = s.{c}){same}").format(
            pk=pk, c=col, p=sql.Identifier(parent.name), ppk=sql.Identifier(parent.pk.name), same=same))
        dangling = cur.fetchall()
        if not dangling:
            continue
        rids = [r for r, _ in dangling]
        for rid, ref in dangling:
            key = str(document_id(rid, table.text_id))
            issues.append(dangling_issue(table.name, key, rid, c, parent.name, ref))
            if c.on_dangling == "reject":
                refused.append(key)
        if c.on_dangling == "reject":
            cur.execute(sql.SQL("DELETE FROM m2p_online_stage WHERE {}::text = ANY(%s)").format(pk), (rids,))
        else:
            cur.execute(sql.SQL("UPDATE m2p_online_stage SET {} = NULL WHERE {}::text = ANY(%s)").format(col, pk),
                        (rids,))
    return refused


def _upsert(cur, table: Table) -> list[str]:
    """The staged rows into the table, in place; the keys of those that were not there before."""
    cols = [sql.Identifier(c.name) for c in table.columns]
    rest = [sql.Identifier(c.name) for c in table.columns if not c.primary_key]
    action = (sql.SQL("DO UPDATE SET ") + sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(c) for c in rest)
              if rest else sql.SQL("DO NOTHING"))
    cur.execute(sql.SQL("INSERT INTO {t} ({cols}) SELECT {cols} FROM m2p_online_stage ON CONFLICT ({pk}) {action} "
                        "RETURNING {pk}::text, xmax = 0").format(
        t=sql.Identifier(table.name), cols=sql.SQL(", ").join(cols), pk=sql.Identifier(table.pk.name), action=action))
    return [str(document_id(rid, table.text_id)) for rid, inserted in cur.fetchall() if inserted]


def _logged(cur, tname: str, keys: list[str]) -> set[str]:
    """Which of these records the log spoke of before."""
    cur.execute(sql.SQL("SELECT DISTINCT source_id FROM {}.rejects WHERE tbl = %s AND source_id = ANY(%s)").format(STATE),
                (tname, keys))
    return {r[0] for r in cur.fetchall()}


def _relink(cur, finder: _Finder, mapping: Mapping, j, table: Table, docs: list[dict]) -> None:
    """The junction's rows of these documents: exactly the links their arrays or the other side's arrays
    hold, where both rows exist (remigrate's rule, for a batch)."""
    wanted: set[tuple[str, str]] = set()
    for doc in docs:
        wanted |= {(str(left), str(right)) for left, right in own_links(j, table.collection, doc)}
    mine = {d["_id"] for d in docs}
    for s in j.sources:
        holder_is_left = s.holds == "right"
        held_side = j.right if holder_is_left else j.left
        if held_side.references == table.name:
            for me in mine:
                for other in finder.of(s.collection, s.field, {me}):
                    wanted.add((str(other), str(me)) if holder_is_left else (str(me), str(other)))
    lt, rt = mapping.tables[j.left.references], mapping.tables[j.right.references]
    sides = [side for side, t in ((j.left, lt), (j.right, rt)) if t.name == table.name]
    uuids = [uuid_from_objectid(m) for m in mine]
    for side in sides:
        cur.execute(sql.SQL("DELETE FROM {} WHERE {} = ANY(%s::uuid[])").format(
            sql.Identifier(j.name), sql.Identifier(side.column)), (uuids,))
    if not wanted:
        return
    execute_values(cur, sql.SQL(
        "INSERT INTO {j} ({l}, {r}) SELECT v.l::uuid, v.r::uuid FROM (VALUES %s) v(l, r) WHERE EXISTS "
        "(SELECT 1 FROM {lt} WHERE {lpk} = v.l::uuid) AND EXISTS (SELECT 1 FROM {rt} WHERE {rpk} = v.r::uuid) "
        "ON CONFLICT DO NOTHING").format(
        j=sql.Identifier(j.name), l=sql.Identifier(j.left.column), r=sql.Identifier(j.right.column),
        lt=sql.Identifier(lt.name), lpk=sql.Identifier(lt.pk.name), rt=sql.Identifier(rt.name),
        rpk=sql.Identifier(rt.pk.name)).as_string(cur),
        [(uuid_from_objectid(left), uuid_from_objectid(right)) for left, right in sorted(wanted)], page_size=5000)


def _orphans(cur, finder: _Finder, mapping: Mapping, parent: Table, new: list[Any]) -> list[tuple[Table, Any]]:
    """Records that reference a row new to the target and lost that reference while it was missing: a row
    whose reference is NULL, or a document whose last word in the log is a dangling_reference reject."""
    if not new:
        return []
    forms = set(new) | {str(i) for i in new}  # an ObjectId, or its hex in a String relation scalar
    out = []
    for t in mapping.tables.values():
        for c in t.columns:
            if c.references != parent.name:
                continue
            children = finder.of(t.collection, c.source, forms)
            if not children:
                continue
            rids = [row_id(ch) for ch in children]
            cur.execute(sql.SQL("SELECT {pk}::text, {c} IS NULL FROM {t} WHERE {pk}::text = ANY(%s)").format(
                pk=sql.Identifier(t.pk.name), c=sql.Identifier(c.name), t=sql.Identifier(t.name)), (rids,))
            present = dict(cur.fetchall())
            absent = [str(ch) for ch, rid in zip(children, rids, strict=True) if rid not in present]
            lost_rejected = set()
            if absent:
                cur.execute(sql.SQL("""SELECT source_id FROM (
                        SELECT DISTINCT ON (source_id) source_id, severity, reason FROM {}.rejects
                        WHERE tbl = %s AND source_id = ANY(%s) AND (severity = 'reject' OR reason = %s)
                        ORDER BY source_id, seq DESC) last
                    WHERE severity = 'reject' AND reason = 'dangling_reference'""").format(STATE),
                            (t.name, absent, REMIGRATED))
                lost_rejected = {r[0] for r in cur.fetchall()}
            out += [(t, ch) for ch, rid in zip(children, rids, strict=True)
                    if present.get(rid) or str(ch) in lost_rejected]
    return out
