"""Validation at cutover in proportion to the changes (online migration; docs/online.md).

A full pass runs while the app still writes to MongoDB (`--baseline FILE`). Before it reads anything it
notes the capture's position: the last sequence number the capture marked, and the changes not yet
applied. A record it proves stays proven unless its document changes again, because until go-live only
the catch-up writes the target, and only for documents the capture marked.

At cutover (`--since FILE`) every document is checked again, by `_id`, that was marked after that
position, was pending at it, was found different by the pass, or whose word in the error log changed
since the pass (the cutover's settling of unique keys and dangling references writes only records it
logs). Each junction's
links touching those documents are proven against the pass's links of the documents not checked again
plus the current arrays of those that are, and its other rows are counted against the pass's. Every
table's count is reconciled with the source's. PostgreSQL's own checks (orphans, type ranges, schema)
read no source and run whole.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bson import ObjectId
from bson.raw_bson import RawBSONDocument
from psycopg2 import sql

from ..errors import ConfigError
from ..files import open_private
from ..ids import row_id, uuid_from_objectid
from ..issues import ErrorLogAccount
from ..mapping import Mapping, Table
from ..migration.state import STATE
from ..online.capture import id_from_key
from ..ops.state_read import readable_state_table
from .database import LinkSets, compare_links, link_pair
from .report import MAX_LISTED, TableCheck, new_lists
from .rows import check_table

VERSION = 2


def capture_position(conn) -> dict[str, Any]:
    """Where the capture is, before a full pass reads anything: the last sequence number marked, then the
    changes still waiting (their order matters: a change marked after the first read is after the mark)."""
    with conn.cursor() as cur:
        if not readable_state_table(cur, "online_seen"):
            raise ConfigError("a validation baseline is for an online migration, and this target has no change "
                              "capture (mongo2pg online start; docs/online.md)")
        cur.execute(sql.SQL("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {}.online_seq").format(STATE))
        mark = cur.fetchone()[0]
        cur.execute(sql.SQL("SELECT collection, source_id FROM {}.online_changes").format(STATE))
        pending: dict[str, list[str]] = defaultdict(list)
        for collection, key in cur.fetchall():
            pending[collection].append(key)
        return {"mark": mark, "pending": dict(pending), "capture": _capture_identity(cur)}


def _capture_identity(cur) -> str | None:
    """When this capture's streams opened: a capture started over (`--fresh`) makes an older baseline stale."""
    cur.execute(sql.SQL("SELECT min(opened_at) FROM {}.online_streams").format(STATE))
    opened = cur.fetchone()[0]
    return opened.isoformat() if opened else None


def write_baseline(path: str, position: dict[str, Any], mapping: Mapping, checks: list[TableCheck],
                   sides: dict[tuple[str, str], set[bytes]], link_sets: dict[str, LinkSets], log: ErrorLogAccount) -> None:
    """The pass's record (0600): the capture's position, what it found different, what the error log said
    of each record (rejected, or a field set to NULL), every junction's links by the side whose array held
    them, and the links it found dropped as dangling."""
    flagged: dict[str, set[str]] = {c.table: set(c.flagged) for c in checks}
    for name, found in link_sets.items():
        j = mapping.junctions[name]
        for p in found.missing | found.extra:  # both ends of a link in doubt are checked again
            flagged[j.left.references].add(str(ObjectId(p[:12])))
            flagged[j.right.references].add(str(ObjectId(p[12:])))
    record = {"version": VERSION, "at": datetime.now(UTC).isoformat(), **position,
              "rowsChecked": sum(c.rows_checked for c in checks),
              "flagged": {t: sorted(ids) for t, ids in flagged.items() if ids},
              "logged": {t.name: {"rejected": sorted(log.rejected.get(t.name, ())),
                                  "fixed": {f: sorted(ids) for (table, f), ids in log.fixed.items()
                                            if table == t.name and ids}}
                         for t in mapping.tables.values()},
              "links": {j.name: {"left": sorted(p.hex() for p in sides.get((j.name, "left"), ())),
                                 "right": sorted(p.hex() for p in sides.get((j.name, "right"), ())),
                                 "dropped": sorted(p.hex() for p in link_sets[j.name].dropped)
                                 if j.name in link_sets else []}
                        for j in mapping.junctions.values()}}
    tmp = Path(path).with_name(Path(path).name + ".tmp")
    with open_private(tmp) as f:
        json.dump(record, f)
    tmp.replace(path)


def usable_baseline(path: str, conn) -> tuple[dict[str, Any] | None, str]:
    """The baseline at `path` when it belongs to the capture running now; else None and why not (the caller
    then checks every record)."""
    try:
        record = json.loads(Path(path).read_text())
    except FileNotFoundError:
        return None, f"no baseline at {path}"
    except (OSError, ValueError) as exc:
        return None, f"the baseline at {path} cannot be read ({exc})"
    if record.get("version") != VERSION:
        return None, f"the baseline at {path} is of another version"
    with conn.cursor() as cur:
        if not readable_state_table(cur, "online_seen"):
            return None, "the target has no change capture"
        now = _capture_identity(cur)
    if now is None or now != record.get("capture"):
        return None, (f"the baseline at {path} was taken for a capture opened at {record.get('capture')}, "
                      f"the capture now was opened at {now} (started over)")
    return record, ""


def to_check_again(conn, mapping: Mapping, record: dict[str, Any], log: ErrorLogAccount) -> dict[str, set[str]]:
    """Per table, the str(_id)s of the documents to check again (see the module's docstring)."""
    by_collection: dict[str, set[str]] = defaultdict(set)
    with conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT collection, source_id FROM {}.online_seen WHERE seq > %s").format(STATE),
                    (record["mark"],))
        for collection, key in cur.fetchall():
            by_collection[collection].add(str(id_from_key(key)))
    for collection, keys in record["pending"].items():
        by_collection[collection] |= {str(id_from_key(k)) for k in keys}
    out: dict[str, set[str]] = {}
    for t in mapping.tables.values():
        ids = set(by_collection.get(t.collection, ())) | set(record["flagged"].get(t.name, ()))
        ids |= _logged_since(t.name, record["logged"][t.name], log)
        out[t.name] = ids
    return out


def _logged_since(table: str, then: dict[str, Any], log: ErrorLogAccount) -> set[str]:
    """The records whose word in the error log differs from the pass's: rejected or set NULL since, or no
    longer (the cutover's settling writes a row only with such an entry)."""
    changed = log.rejected.get(table, set()) ^ set(then["rejected"])
    fields = {f for (t, f) in log.fixed if t == table} | set(then["fixed"])
    for f in fields:
        changed |= log.fixed.get((table, f), set()) ^ set(then["fixed"].get(f, ()))
    return changed


def check_since(conn, mapping: Mapping, source, log: ErrorLogAccount, record: dict[str, Any]
                ) -> tuple[list[TableCheck], list[tuple], dict[str, Any]]:
    """Everything that changed after the baseline's pass: each table's checks, each junction's result (as the
    full pass's junction job gives it), and the report's lists of examples."""
    lists = new_lists()
    again = to_check_again(conn, mapping, record, log)
    with conn.cursor() as cur:
        checks, current = check_changed_tables(cur, mapping, source, log, lists, again)
        linked = [(j, *check_changed_junction(cur, mapping, j, record, again, current))
                  for j in mapping.junctions.values()]
    return checks, linked, lists


def check_changed_tables(cur, mapping: Mapping, source, log: ErrorLogAccount, lists: dict[str, Any],
                         again: dict[str, set[str]]) -> tuple[list[TableCheck], dict[tuple[str, str], set[bytes]]]:
    """The documents to check again against their rows (a document gone must have no row), every table's
    count against the source's; and the current links of those documents, by side."""
    checks = []
    sides: dict[tuple[str, str], set[bytes]] = defaultdict(set)
    for t in mapping.tables.values():
        ids = again[t.name]
        fetched: set[str] = set()
        chk = check_table(cur, mapping, t, source, log, lists, ids, sides,
                           docs_of=_noting_ids(source.fetch_raw(t.collection, ids), fetched))
        chk.source = source.count(t.collection)
        _rows_of_gone(cur, t, ids - fetched - log.rejected.get(t.name, set()), chk, lists)
        checks.append(chk)
    return checks, sides


def _noting_ids(raws, seen: set[str]):
    for raw in raws:
        seen.add(str(RawBSONDocument(raw)["_id"]))
        yield raw


def _rows_of_gone(cur, table: Table, gone: set[str], chk: TableCheck, lists: dict[str, Any]) -> None:
    """A document no longer in the source must have no row."""
    keys = {}
    for i in gone:
        _id = ObjectId(i) if not table.text_id and ObjectId.is_valid(i) else i
        if table.text_id == (type(_id) is str):
            keys[row_id(_id)] = i
    if not keys:
        return
    cur.execute(sql.SQL("SELECT {pk}::text FROM {t} WHERE {pk} = ANY(%s::{type}[])").format(
        pk=sql.Identifier(table.pk.name), t=sql.Identifier(table.name), type=sql.SQL(table.pk.type)), (list(keys),))
    for (u,) in cur.fetchall():
        chk.extra += 1
        chk.flagged.add(keys[u])
        if len(lists["extraRecords"]) < MAX_LISTED:
            lists["extraRecords"].append({"tableName": table.name, "postgresUuid": u, "mongoId": keys[u],
                                          "reason": "the document left the source; its row is still here"})


def check_changed_junction(cur, mapping: Mapping, j, record: dict[str, Any], again: dict[str, set[str]],
                           current: dict[tuple[str, str], set[bytes]]) -> tuple[dict, list, LinkSets]:
    """A junction's links touching the documents checked again, proven; its other rows counted against the
    pass's links of the documents that did not change."""
    lt, rt = mapping.tables[j.left.references], mapping.tables[j.right.references]
    left_ids = {ObjectId(i).binary for i in again[lt.name] if ObjectId.is_valid(i)}
    right_ids = {ObjectId(i).binary for i in again[rt.name] if ObjectId.is_valid(i)}
    links = record["links"].get(j.name, {})
    base_left = {bytes.fromhex(h) for h in links.get("left", ())}
    base_right = {bytes.fromhex(h) for h in links.get("right", ())}
    dropped = {bytes.fromhex(h) for h in links.get("dropped", ())}
    # Touching the changed: the pass's links from unchanged documents' arrays, and the changed documents' arrays now.
    expected = ({p for p in base_left if p[:12] not in left_ids and p[12:] in right_ids}
                | {p for p in base_right if p[12:] not in right_ids and p[:12] in left_ids}
                | current.get((j.name, "left"), set()) | current.get((j.name, "right"), set()))
    untouched = {p for p in (base_left | base_right) - dropped if p[:12] not in left_ids and p[12:] not in right_ids}
    touching = sql.SQL("({l} = ANY(%s::uuid[]) OR {r} = ANY(%s::uuid[]))").format(
        l=sql.Identifier(j.left.column), r=sql.Identifier(j.right.column))
    params = ([uuid_from_objectid(ObjectId(b)) for b in left_ids], [uuid_from_objectid(ObjectId(b)) for b in right_ids])
    cur.execute(sql.SQL("SELECT {} FROM {} WHERE {}").format(link_pair(j), sql.Identifier(j.name), touching), params)
    stats, problems, found = compare_links(cur, mapping, j, [t for (t,) in cur.fetchall()], expected)
    cur.execute(sql.SQL("SELECT count(*) FROM {} WHERE NOT {}").format(sql.Identifier(j.name), touching), params)
    others = cur.fetchone()[0]
    stats["expectedLinks"] += len(untouched)
    stats["actualRows"] += others
    if others > len(untouched):
        stats["extra"] += others - len(untouched)
        problems.append(("extra", f"{others - len(untouched)} rows", "among links of unchanged documents"))
    elif others < len(untouched):
        stats["missing"] += len(untouched) - others
        problems.append(("missing", f"{len(untouched) - others} rows", "among links of unchanged documents"))
    return stats, problems, found
