"""`mongo2pg remigrate`: documents fixed in the source after the migration, loaded again one by one through
the migration's own rules: the same transform (a document it still refuses is a reject with its reason),
the references' dangling policies, the unique indexes (a duplicate is refused by PostgreSQL, named), and
the junction rule (a link exists while either side's array holds it: the document's own arrays and the
other documents' arrays that name it). Each record's outcome goes to the reject log and mongo2pg.rejects:
a `remigrated` fix-up for a loaded one (validation then counts it loaded, not rejected), or its new reject.
A loaded row is replaced in place (INSERT ... ON CONFLICT DO UPDATE): its children keep their references.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import psycopg2
from bson import ObjectId
from psycopg2 import sql

from ..ids import bad_id_reason, row_id, uuid_from_objectid
from ..issues import FIXUP, REJECT, REMIGRATED, Issue, append_issues
from ..mapping import Junction, Mapping, Table
from ..source.codec import to_extended_json
from ..transform.links import own_links
from ..transform.table import TableTransform
from .settle import dangling_issue
from .state import STATE, insert_issues


@dataclass
class Outcome:
    loaded: list[str] = field(default_factory=list)  # "<table> <_id>"
    rejected: list[Issue] = field(default_factory=list)
    not_in_source: list[str] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)


def logged_rejects(conn, reasons: list[str] | None) -> list[tuple[str, str]]:
    """(table, _id) of every record whose last word in the log is a reject (of these reasons, if given)."""
    with conn.cursor() as cur:
        cur.execute(sql.SQL("""SELECT tbl, source_id, reason FROM (
                                 SELECT DISTINCT ON (tbl, source_id) tbl, source_id, severity, reason FROM {}.rejects
                                 WHERE source_id IS NOT NULL AND (severity = 'reject' OR reason = %s)
                                 ORDER BY tbl, source_id, seq DESC) last
                               WHERE severity = 'reject' ORDER BY tbl, source_id""").format(STATE), (REMIGRATED,))
        rows = cur.fetchall()
    conn.rollback()
    return [(t, i) for t, i, r in rows if not reasons or r in reasons]


def remigrate(conn, source, mapping: Mapping, wanted: list[tuple[Table, Any]], error_log: str | None,
              note: str = "re-read from the source and loaded by mongo2pg remigrate", note_all: bool = True,
              commit: bool = True) -> Outcome:
    """Load each (table, _id) from the source again, then the records that referenced one of them and lost
    that reference when it was rejected (set NULL, or rejected themselves for it), and so on; one
    transaction, a savepoint per record. Each loaded record gets a `remigrated` entry saying `note`; with
    note_all False only one the log spoke of before (the online catch-up loads many it never did)."""
    out = Outcome()
    finder = _Finder(source)
    _prime(finder, mapping, wanted)
    seen: set[tuple[str, str]] = set()
    round_: list[tuple[Table, Any]] = list(wanted)
    while round_:
        children: list[tuple[Table, Any]] = []
        by_table: dict[str, list[Any]] = {}
        for table, _id in round_:
            if (table.name, str(_id)) not in seen:
                seen.add((table.name, str(_id)))
                by_table.setdefault(table.name, []).append(_id)
        for tname, ids in by_table.items():
            table = mapping.tables[tname]
            docs = source.fetch(table.collection, {str(i) for i in ids})
            transform = TableTransform(mapping, table)
            for _id in ids:
                doc = docs.get(str(_id))
                if doc is None:
                    out.not_in_source.append(f"{tname} {_id}")
                elif _one(conn, finder, mapping, table, transform, doc, out, note, note_all):
                    children += _orphans(conn, finder, mapping, table, doc["_id"])
        round_ = children
    with conn.cursor() as cur:
        insert_issues(cur, out.issues)
    if commit:  # else the caller commits (and writes the error log), with work of its own in the transaction
        conn.commit()
        if error_log:
            append_issues(error_log, out.issues)
    return out


def _orphans(conn, finder: _Finder, mapping: Mapping, parent: Table, _id: Any) -> list[tuple[Table, Any]]:
    """Records that reference this one and lost it while it was missing: a row whose reference is NULL, or
    a document rejected for it (its last log entry a dangling_reference reject)."""
    forms = {_id, str(_id)}  # an ObjectId, or its hex in a String relation scalar (stored_as: hex)
    out = []
    for t in mapping.tables.values():
        for c in t.columns:
            if c.references != parent.name:
                continue
            for child in finder.of(t.collection, c.source, forms):
                if bad_id_reason(child, t.text_id) is not None:
                    continue
                with conn.cursor() as cur:
                    cur.execute(sql.SQL("SELECT {} IS NULL FROM {} WHERE {} = %s::{}").format(
                        sql.Identifier(c.name), sql.Identifier(t.name), sql.Identifier(t.pk.name),
                        sql.SQL(t.pk.type)), (row_id(child),))
                    row = cur.fetchone()
                    if row is None:
                        cur.execute(sql.SQL("SELECT severity, reason FROM {}.rejects WHERE tbl = %s AND source_id = %s "
                                            "AND (severity = 'reject' OR reason = %s) ORDER BY seq DESC LIMIT 1").format(
                            STATE), (t.name, str(child), REMIGRATED))
                        last = cur.fetchone()
                        lost = last is not None and last == ("reject", "dangling_reference")
                    else:
                        lost = row[0]
                if lost:
                    out.append((t, child))
    return out


def _prime(finder: _Finder, mapping: Mapping, wanted: list[tuple[Table, Any]]) -> None:
    """Ask the finder about every wanted record at once: one read per (collection, field) for them all, not
    one per record."""
    ids: dict[str, set] = {}
    for table, _id in wanted:
        ids.setdefault(table.name, set()).add(_id)
    for tname, these in ids.items():
        for j in mapping.junctions.values():
            for src in j.sources:
                held = j.right if src.holds == "right" else j.left
                if held.references == tname:
                    finder.of(src.collection, src.field, these)
        for t in mapping.tables.values():
            for c in t.columns:
                if c.references == tname:
                    finder.of(t.collection, c.source, these | {str(x) for x in these})


def _one(conn, finder: _Finder, mapping: Mapping, table: Table, transform: TableTransform, doc: dict,
         out: Outcome, note: str = "re-read from the source and loaded by mongo2pg remigrate",
         note_all: bool = True) -> bool:
    """Load one document again; True when it was loaded."""
    key, tname = str(doc["_id"]), table.name
    result = transform.convert_batch([doc])
    fixups = [i for i in result.issues if i.severity == FIXUP]
    if not result.lines:
        out.rejected += [i for i in result.issues if i.severity == REJECT]
        out.issues += result.issues
        return False
    rid = row_id(doc["_id"])
    with conn.cursor() as cur:
        cur.execute("SAVEPOINT m2p_remigrate")
        try:
            _stage(cur, table, transform.columns, result.lines[0])
            refusal = _settle_references(cur, mapping, table, key, rid, fixups)
            if refusal is None:
                _upsert(cur, table)
                for j in mapping.junctions.values():
                    if table.name in (j.left.references, j.right.references):
                        _relink(cur, finder, mapping, j, table, doc)
        except psycopg2.Error as exc:
            cur.execute("ROLLBACK TO SAVEPOINT m2p_remigrate")
            message = (exc.pgerror or str(exc)).strip().splitlines()[0]
            refusal = Issue(REJECT, tname, key, rid, "pg_rejected", None, f"PostgreSQL refused the row: {message}",
                            to_extended_json(doc))
        cur.execute("RELEASE SAVEPOINT m2p_remigrate")
    if refusal is not None:
        out.rejected.append(refusal)
        out.issues.append(refusal)
        return False
    out.loaded.append(f"{tname} {key}")
    # the remigrated entry first: it makes the record's earlier entries past, not the fix-ups of this load
    if note_all or logged_before(conn, tname, key):
        out.issues.append(Issue(FIXUP, tname, key, rid, REMIGRATED, None, note))
    out.issues += fixups
    return True


def logged_before(conn, tname: str, key: str) -> bool:
    """Whether the log holds any entry of this record (a reject, or a fix-up its new load makes past)."""
    with conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {}.rejects WHERE tbl = %s AND source_id = %s)").format(STATE),
                    (tname, key))
        return cur.fetchone()[0]


def _stage(cur, table: Table, columns: list[str], line: str) -> None:
    """The row, as COPY reads it, in a temporary copy of the table (dropped at commit)."""
    cur.execute("DROP TABLE IF EXISTS pg_temp.m2p_remigrate")
    cur.execute(sql.SQL("CREATE TEMP TABLE m2p_remigrate (LIKE {}) ON COMMIT DROP").format(sql.Identifier(table.name)))
    cur.copy_expert(sql.SQL("COPY m2p_remigrate ({}) FROM STDIN").format(
        sql.SQL(", ").join(sql.Identifier(c) for c in columns)), io.StringIO(line))


def _settle_references(cur, mapping: Mapping, table: Table, key: str, rid: str, fixups: list[Issue]) -> Issue | None:
    """Each reference to a row that does not exist, by its column's policy (as the migration's settle step):
    the reject it makes, or None (a fix-up added for each reference set to NULL)."""
    for c in table.columns:
        if not c.references:
            continue
        parent = mapping.tables[c.references]
        cur.execute(sql.SQL("SELECT r.{c}::text FROM m2p_remigrate r WHERE r.{c} IS NOT NULL AND NOT EXISTS "
                            "(SELECT 1 FROM {p} p WHERE p.{pk} = r.{c})").format(
            c=sql.Identifier(c.name), p=sql.Identifier(parent.name), pk=sql.Identifier(parent.pk.name)))
        got = cur.fetchone()
        if got is None or c.on_dangling == "keep":
            continue
        if c.on_dangling == "reject":
            return dangling_issue(table.name, key, rid, c, parent.name, got[0])
        cur.execute(sql.SQL("UPDATE m2p_remigrate SET {} = NULL").format(sql.Identifier(c.name)))
        fixups.append(dangling_issue(table.name, key, rid, c, parent.name, got[0]))
    return None


def _upsert(cur, table: Table) -> None:
    cols = [sql.Identifier(c.name) for c in table.columns]
    rest = [sql.Identifier(c.name) for c in table.columns if not c.primary_key]
    action = (sql.SQL("DO UPDATE SET ") + sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(c) for c in rest)
              if rest else sql.SQL("DO NOTHING"))
    cur.execute(sql.SQL("INSERT INTO {t} ({cols}) SELECT {cols} FROM m2p_remigrate ON CONFLICT ({pk}) {action}").format(
        t=sql.Identifier(table.name), cols=sql.SQL(", ").join(cols), pk=sql.Identifier(table.pk.name), action=action))


def _relink(cur, finder: _Finder, mapping: Mapping, j: Junction, table: Table, doc: dict) -> None:
    """The junction's rows for this document: exactly the links its arrays or the other side's arrays hold,
    where both rows exist."""
    me = doc["_id"]
    wanted = {(str(left), str(right)) for left, right in own_links(j, table.collection, doc)}
    for s in j.sources:
        holder_is_left = s.holds == "right"
        held_side = j.right if holder_is_left else j.left
        if held_side.references == table.name:  # other documents' arrays naming this one
            for other in finder.of(s.collection, s.field, {me}):
                wanted.add((str(other), str(me)) if holder_is_left else (str(me), str(other)))
    lt, rt = mapping.tables[j.left.references], mapping.tables[j.right.references]
    mine = [side for side, t in ((j.left, lt), (j.right, rt)) if t.name == table.name]
    own = sql.SQL(" OR ").join(sql.SQL("{} = %s::uuid").format(sql.Identifier(s.column)) for s in mine)
    cur.execute(sql.SQL("DELETE FROM {} WHERE ({})").format(sql.Identifier(j.name), own),
                [uuid_from_objectid(me)] * len(mine))
    for left, right in sorted(wanted):
        cur.execute(sql.SQL("INSERT INTO {j} ({l}, {r}) SELECT %s::uuid, %s::uuid WHERE EXISTS "
                            "(SELECT 1 FROM {lt} WHERE {lpk} = %s::uuid) AND EXISTS (SELECT 1 FROM {rt} WHERE {rpk} = "
                            "%s::uuid) ON CONFLICT DO NOTHING").format(
            j=sql.Identifier(j.name), l=sql.Identifier(j.left.column), r=sql.Identifier(j.right.column),
            lt=sql.Identifier(lt.name), lpk=sql.Identifier(lt.pk.name), rt=sql.Identifier(rt.name),
            rpk=sql.Identifier(rt.pk.name)), [uuid_from_objectid(x) for x in (left, right, left, right)])


class _Finder:
    """Which documents of a collection hold one of some values in a field (a reference, or an array of
    them). A live source that answers `$in` on the field right is asked for the new values only (an index on
    the field makes it a look-up: the work follows the changes, not the data); otherwise one read per
    (collection, field) with only that field, again only when asked about a value it did not look for (a
    dump, or a server that matches no array element)."""

    def __init__(self, source):
        self.source = source
        self.found: dict[tuple[str, str], tuple[set, dict[Any, list[Any]]]] = {}

    def of(self, collection: str, field_name: str, values: set) -> list[Any]:
        looked, held = self.found.get((collection, field_name), (set(), {}))
        new = values - looked
        if new:
            holding = getattr(self.source, "holding", None)
            docs = holding(collection, field_name, {v for v in new if _hashable(v)}) if holding else None
            if docs is None:  # read whole: every value looked for so far, again
                new, held, docs = looked | values, {}, _documents(self.source, collection, field_name)
            else:
                held = {k: list(v) for k, v in held.items()}
            for d in docs:
                v = d.get(field_name)
                for e in v if isinstance(v, list) else [v]:
                    if _hashable(e) and e in new:
                        held.setdefault(e, []).append(d.get("_id"))
            looked = looked | values
            self.found[(collection, field_name)] = (looked, held)
        return sorted({i for v in values for i in held.get(v, [])}, key=str)


def _hashable(v: Any) -> bool:
    return isinstance(v, (str, ObjectId))


def _documents(source, collection: str, field_name: str):
    db = getattr(source, "db", None)
    if db is not None and collection in source.collections():
        return db[collection].find({}, {field_name: 1}, batch_size=5000)
    return source.iter_all(collection)
