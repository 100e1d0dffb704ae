"""Reverse validation: MongoDB against PostgreSQL after reverse-sync. Every document a captured change
names is compared field by field with its row (as the forward transform reads both), every link array
with its junction, and each collection's count with its table's plus the documents the migration
rejected (those never reached PostgreSQL and stay in MongoDB as they were). PASS when nothing differs
and no change waits."""

from __future__ import annotations

import json
from typing import Any

from psycopg2 import sql

from ..connect import mongo_client, pg_connect
from ..files import write_private
from ..mapping import load_mapping
from ..migration.retry import StderrEvents, with_retries
from .changed import Changed
from .rows import ObjectIds
from .sync import apply, require_capture


def reverse_validate(pg_uri: str, mongo_uri: str, db: str, mapping_name: str = "nextcrm",
                     report: str | None = None, retry_seconds: float = 300.0) -> dict[str, Any]:
    """Read-only: after a lost connection to either side, compared again from the start (retry_seconds)."""
    mapping = load_mapping(mapping_name)
    pg_connect(pg_uri, "mongo2pg-reverse-validate").close()  # a wrong URI or password: one line now, not retried
    result = with_retries(lambda: _compare(pg_uri, mongo_uri, db, mapping), retry_seconds, StderrEvents,
                          "reverse-validate", pg_uri)
    if report:
        write_private(report, json.dumps(result, indent=1, default=str) + "\n")
    return result


def _compare(pg_uri: str, mongo_uri: str, db: str, mapping) -> dict[str, Any]:
    conn = pg_connect(pg_uri, "mongo2pg-reverse-validate")
    client = mongo_client(mongo_uri)
    try:
        require_capture(conn)
        with conn.cursor() as cur:
            cur.execute("SELECT tbl, pk::text, left_id::text, right_id::text, consumed_at IS NULL FROM mongo2pg.changes")
            changes = cur.fetchall()
            cur.execute("SELECT tbl, count(*) FROM mongo2pg.rejects WHERE severity = 'reject' GROUP BY tbl")
            rejected = dict(cur.fetchall())
            counts = []
            for t in mapping.tables.values():
                cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t.name)))
                rows = cur.fetchone()[0]
                docs = client[db][t.collection].count_documents({})
                counts.append({"table": t.name, "collection": t.collection, "rows": rows,
                               "rejected_at_migration": rejected.get(t.name, 0), "documents": docs,
                               "ok": docs == rows + rejected.get(t.name, 0)})
        conn.rollback()
        changed = Changed()
        for tbl, pk, left, right, _ in changes:
            changed.add(mapping, tbl, pk, left, right)
        found = apply(conn, client[db], mapping, changed, ObjectIds(conn), write=False)
    finally:
        conn.close()
        client.close()
    waiting = sum(1 for c in changes if c[4])
    reasons = ([f"{waiting} captured changes not yet applied (run reverse-sync)"] if waiting else []) + \
        ([f"{len(found.differences)} documents differ from their rows"] if found.differences else []) + \
        [f"{c['collection']}: {c['documents']} documents, expected {c['rows']} rows + "
         f"{c['rejected_at_migration']} rejected at migration" for c in counts if not c["ok"]]
    return {"status": "FAIL" if reasons else "PASS", "reasons": reasons, "changes": len(changes),
            "waiting": waiting, "documents_compared": len(changed), "differences": found.differences[:200],
            "counts": counts}
