"""`mongo2pg reverse-sync`: the captured changes applied to MongoDB, in batches, until none waits.

Each document is rebuilt from its row as it is now (not from the change), so applying a change twice is
applying it once: a batch is marked consumed only after its MongoDB writes succeeded, and a run killed at
any point and rerun converges to the same documents. The same pass without writing is the reverse
validation (check.py): nothing left to write means MongoDB holds what PostgreSQL holds.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from psycopg2 import sql
from psycopg2.extras import RealDictCursor, register_uuid

from ..connect import mongo_client, pg_connect
from ..errors import ConfigError
from ..mapping import Mapping, load_mapping
from ..migration.retry import StderrEvents, with_retries
from ..pooler import refuse_transaction_pooler
from ..transform import TableTransform
from .changed import Changed, holder
from .rows import ObjectIds, merged_array, row_fields

CHUNK = 500


@dataclass
class Pass:
    """What one pass over a set of changes found (and, when writing, did)."""

    counts: Counter = field(default_factory=Counter)
    differences: list[dict[str, Any]] = field(default_factory=list)


def _chunks(keys: Iterable[str]) -> Iterable[list[str]]:
    keys = sorted(k for k in keys if k)
    for i in range(0, len(keys), CHUNK):
        yield keys[i:i + CHUNK]


def apply(conn, mdb, mapping: Mapping, changed: Changed, ids: ObjectIds, write: bool) -> Pass:
    """Bring (write) or compare (not write) every named document to its row and every named link array
    to its junction. Rows first: a document created here may be the one an array lives in."""
    register_uuid(None, conn)  # uuid and uuid[] columns as UUIDs (psycopg2 leaves a uuid[] as its text)
    out = Pass()
    for tname, keys in changed.rows.items():
        _rows(conn, mdb, mapping, tname, keys, ids, write, out)
    for (jname, source), keys in changed.arrays.items():
        _arrays(conn, mdb, mapping, jname, source, keys, ids, write, out)
    return out


def _rows(conn, mdb, mapping, tname, keys, ids, write, out: Pass) -> None:
    table = mapping.tables[tname]
    tt = TableTransform(mapping, table)
    coll = mdb[table.collection]
    pk = table.pk.name
    select = sql.SQL("SELECT {} FROM {} WHERE {} = ANY(%s::{}[])").format(
        sql.SQL(", ").join(sql.Identifier(c.name) for c in table.columns), sql.Identifier(tname), sql.Identifier(pk),
        sql.SQL(table.pk.type))
    for chunk in _chunks(keys):
        with conn.cursor(cursor_factory=RealDictCursor) as cur:
            cur.execute(select, (chunk,))
            rows = {str(r[pk]): r for r in cur.fetchall()}
        conn.rollback()
        # a string id is the document's _id as it is; a UUID gives back its ObjectId (or a new one, recorded)
        oids = {k: k if table.text_id else ids.of(k, create=k in rows) for k in chunk}
        docs = {d["_id"]: d for d in coll.find({"_id": {"$in": [o for o in oids.values() if o is not None]}})}
        for k in chunk:
            oid, row = oids[k], rows.get(k)
            doc = docs.get(oid) if oid is not None else None
            if row is None:
                if doc is not None:
                    out.counts["deleted"] += 1
                    _found(out, write, table.collection, oid, k, "the row was deleted; the document remains")
                    if write:
                        coll.delete_one({"_id": oid})
                continue
            fields = row_fields(table, tt, row, doc, oid, ids)
            if doc is None:
                out.counts["created"] += 1
                _found(out, write, table.collection, oid, k, "the row has no document")
                if write:
                    coll.replace_one({"_id": oid}, {"_id": oid, **fields}, upsert=True)
            elif fields:
                out.counts["updated"] += 1
                _found(out, write, table.collection, oid, k, f"fields differ: {', '.join(sorted(fields))}")
                if write:
                    coll.update_one({"_id": oid}, {"$set": fields})


def _arrays(conn, mdb, mapping, jname, source, keys, ids, write, out: Pass) -> None:
    j = mapping.junctions[jname]
    _, own, other = holder(mapping, j, source)
    coll = mdb[source.collection]
    select = sql.SQL("SELECT {own}::text, array_agg({other}::text ORDER BY {other}) FROM {j} "
                     "WHERE {own} = ANY(%s::uuid[]) GROUP BY {own}").format(
        own=sql.Identifier(own), other=sql.Identifier(other), j=sql.Identifier(jname))
    for chunk in _chunks(keys):
        with conn.cursor() as cur:
            cur.execute(select, (chunk,))
            links = dict(cur.fetchall())
        conn.rollback()
        oids = {k: ids.of(k, create=False) for k in chunk}
        docs = {d["_id"]: d for d in coll.find({"_id": {"$in": [o for o in oids.values() if o is not None]}},
                                               {source.field: 1})}
        for k in chunk:
            doc = docs.get(oids[k]) if oids[k] is not None else None
            if doc is None:
                continue  # its row is gone (the document with it) or never had one
            wanted = [ids.of(e) for e in links.get(k, [])]
            new = merged_array(doc.get(source.field), wanted)
            if new is None:
                continue
            out.counts["arrays"] += 1
            _found(out, write, source.collection, doc["_id"], k, f"{source.field} differs from {jname}")
            if write:
                coll.update_one({"_id": doc["_id"]}, {"$set": {source.field: new}})


def _found(out: Pass, write: bool, collection: str, oid, uuid: str, what: str) -> None:
    if not write:
        out.differences.append({"collection": collection, "_id": str(oid), "uuid": uuid, "difference": what})


def lock(conn) -> None:
    with conn.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(hashtext('mongo2pg.reverse-sync'))")
        if not cur.fetchone()[0]:
            conn.rollback()
            raise ConfigError("another reverse-sync is running against this database: wait for it or stop it")
    conn.commit()


def require_capture(conn) -> None:
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('mongo2pg.changes')")
        found = cur.fetchone()[0]
    conn.rollback()
    if found is None:
        raise ConfigError("no change capture in this database (mongo2pg.changes is missing): it is installed at "
                          "go-live (phase 50, `mongo2pg capture install`); without it only a restore from the "
                          "backup can roll back (rollback_mode=restore)")


def reverse_sync(pg_uri: str, mongo_uri: str, db: str, mapping_name: str = "nextcrm", batch: int = 1000,
                 on_batch: Callable[[dict[str, Any]], None] | None = None, retry_seconds: float = 300.0
                 ) -> dict[str, Any]:
    """Apply every waiting change; repeat until none waits. Returns the totals. A lost connection to either
    side starts it again (within retry_seconds): a change is consumed only once MongoDB has its writes, and
    applying one twice writes the same document."""
    mapping = load_mapping(mapping_name)
    started = time.monotonic()
    totals: Counter = Counter()
    refuse_transaction_pooler(pg_uri)  # and a wrong URI or password: one line now, not retried
    with_retries(lambda: _sync(pg_uri, mongo_uri, db, mapping, batch, on_batch, totals), retry_seconds,
                 StderrEvents, "reverse-sync", pg_uri)
    return {**_figures(totals), "seconds": round(time.monotonic() - started, 2)}


def _sync(pg_uri: str, mongo_uri: str, db: str, mapping: Mapping, batch: int,
          on_batch: Callable[[dict[str, Any]], None] | None, totals: Counter) -> None:
    conn = pg_connect(pg_uri, "mongo2pg-reverse-sync")
    client = mongo_client(mongo_uri)
    try:
        require_capture(conn)
        lock(conn)
        ids = ObjectIds(conn)
        while True:
            with conn.cursor() as cur:
                cur.execute("SELECT seq, tbl, pk::text, left_id::text, right_id::text FROM mongo2pg.changes "
                            "WHERE consumed_at IS NULL ORDER BY seq LIMIT %s", (batch,))
                pending = cur.fetchall()
            conn.rollback()
            if not pending:
                break
            changed = Changed()
            for _, tbl, pk, left, right in pending:
                changed.add(mapping, tbl, pk, left, right)
            done = apply(conn, client[db], mapping, changed, ids, write=True)
            with conn.cursor() as cur:  # consumed only now that MongoDB has every write
                cur.execute("UPDATE mongo2pg.changes SET consumed_at = clock_timestamp() WHERE seq = ANY(%s)",
                            ([p[0] for p in pending],))
            conn.commit()
            totals.update(done.counts)
            totals["changes"] += len(pending)
            totals["batches"] += 1
            if on_batch:
                on_batch({**_figures(totals), "last_seq": pending[-1][0]})
    finally:
        conn.close()
        client.close()


def _figures(totals: Counter) -> dict[str, int]:
    return {k: totals[k] for k in ("changes", "batches", "created", "updated", "deleted", "arrays")}
