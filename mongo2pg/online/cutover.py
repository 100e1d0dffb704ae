"""The cutover of an online migration, with the app in maintenance: the capture drained to the last change
(no event for `idle_seconds`: nothing writes any more), every marked document applied, the unique keys
settled and their indexes built, what else the bulk left (indexes, foreign keys, ANALYZE), then the counts
reconciled and the run's summary stored as the offline run's would be. Each part is timed: they are the
engine's part of the maintenance window.

The unique keys wait for this moment because the app may write a duplicate while the bulk reads (after its
unique scan): the bulk's rule holds here, applied to the rows: of rows sharing a key, the smallest _id keeps
it, each other one is removed (its junction rows with it, its referrers settled by policy) and logged as a
`duplicate_key` reject, as the bulk logs one. A document the bulk rejected as a duplicate, in a collection
that changed since, is read again first: its winner may be gone."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psycopg2 import sql

from .. import schema
from ..connect import BULK_SESSION, pg_connect
from ..errors import ConfigError
from ..ids import document_id
from ..issues import REJECT, ErrorLogAccount, Issue, append_issues, write_error_log
from ..mapping import Mapping, Table
from ..migration import state
from ..migration.remigrate import logged_rejects, remigrate
from ..migration.runner import reconcile
from ..migration.summary import Summary
from ..migration.unique import duplicate_issue, unique_indexes
from .apply import Applied, apply_waiting, bulk_complete, id_of, remove_row
from .capture import Capture, mapped_collections


@dataclass
class Cutover:
    parts: dict[str, float] = field(default_factory=dict)  # seconds, in order
    drained_events: int = 0
    applied: Applied = field(default_factory=Applied)
    duplicates: int = 0
    summary: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"seconds": round(sum(self.parts.values()), 2), "parts": {k: round(v, 2) for k, v in self.parts.items()},
                "drained_events": self.drained_events, "loaded": self.applied.loaded, "removed": self.applied.removed,
                "rejected": len(self.applied.rejected), "duplicates_rejected": self.duplicates,
                "status": self.summary.get("status"), "totals": self.summary.get("totals"),
                "unreconciled": [{k: t[k] for k in ("table", "source", "loaded", "rejected")}
                                 for t in self.summary.get("tables", []) if not t["reconciled"]],
                "summary": self.summary}


def cutover(pg_uri: str, source, mapping: Mapping, error_log: str | None, idle_seconds: float = 1.0,
            workers: int = 2, progress: Callable[[str], None] | None = None) -> Cutover:
    out = Cutover()
    say = progress or (lambda _line: None)

    def part(name: str, started: float) -> None:
        out.parts[name] = time.monotonic() - started
        say(f"online cutover: {name} done in {out.parts[name]:.1f} s")

    with pg_connect(pg_uri, "mongo2pg online cutover") as check:
        if not bulk_complete(check):
            raise ConfigError("the bulk has not completed (mongo2pg migrate --online): finish it, then the cutover")
    started = time.monotonic()
    out.drained_events = drain(pg_uri, source.db, mapping, idle_seconds)
    part("drain", started)
    conn = pg_connect(pg_uri, "mongo2pg online cutover")
    try:
        state.lock_target(conn)  # no migration runs beside the cutover (nor a second cutover)
        started = time.monotonic()
        out.applied = apply_waiting(conn, source, mapping, error_log=error_log, progress=say)
        part("apply", started)
        started = time.monotonic()
        out.duplicates = settle_unique_keys(conn, source, mapping, error_log)
        part("unique keys", started)
        started = time.monotonic()
        schema.finalize(conn, mapping, connect=lambda: pg_connect(pg_uri, settings=BULK_SESSION), workers=workers,
                        analyze=True)
        part("indexes, foreign keys, ANALYZE", started)
        started = time.monotonic()
        out.summary = _store_summary(conn, mapping, source, error_log)
        part("reconcile", started)
    finally:
        conn.close()
    return out


def drain(pg_uri: str, db, mapping: Mapping, idle_seconds: float) -> int:
    """The capture from its stored tokens until no event comes for idle_seconds; the events it read."""
    cap = Capture(pg_uri, db, mapped_collections(mapping))
    cap.open()
    try:
        return cap.run(lambda: cap.idle_seconds() >= idle_seconds, retry_seconds=60)
    finally:
        cap.close()


def settle_unique_keys(conn, source, mapping: Mapping, error_log: str | None) -> int:
    """Every unique key held by one row, by the bulk's rule; the number of rows rejected as duplicates."""
    changed = _changed_collections(conn)
    again = [(mapping.tables[t], id_of(mapping.tables[t], i)) for t, i in logged_rejects(conn, ["duplicate_key"])
             if t in mapping.tables and mapping.tables[t].collection in changed]
    if again:
        remigrate(conn, source, mapping, again, error_log, note="a duplicate read again at cutover (its collection "
                  "changed during the online migration)", note_all=False)
    issues: list[Issue] = []
    with conn.cursor() as cur:
        for table in mapping.tables.values():
            for idx in unique_indexes(table):
                for loser, value, kept in _losers(cur, table, idx.columns):
                    remove_row(conn, cur, mapping, table, document_id(loser, table.text_id), issues, note=None)
                    issues.append(duplicate_issue(table, document_id(loser, table.text_id), idx, value,
                                                  document_id(kept, table.text_id)))
        state.insert_issues(cur, issues)
    conn.commit()
    if error_log and issues:
        append_issues(error_log, issues)
    return sum(1 for i in issues if i.reason == "duplicate_key")


def _losers(cur, table: Table, columns: list[str]) -> list[tuple[str, str, str]]:
    """(row id, the key's values, the row id that keeps it) of each row sharing a key with a smaller id; the
    order is the bulk's: an ObjectId's bytes (its UUID's, which keep their order), a string id's code points."""
    pk = sql.Identifier(table.pk.name)
    order = sql.SQL("{} COLLATE \"C\"").format(pk) if table.text_id else pk
    cols = [sql.Identifier(c) for c in columns]
    cur.execute(sql.SQL("""SELECT id, value, kept FROM (
            SELECT {pk}::text AS id, concat_ws(', ', {texts}) AS value,
                   first_value({pk}::text) OVER w AS kept, row_number() OVER w AS n
            FROM {t} WHERE {notnull} WINDOW w AS (PARTITION BY {cols} ORDER BY {order})) ranked
        WHERE n > 1 ORDER BY id""").format(
        pk=pk, t=sql.Identifier(table.name), order=order, cols=sql.SQL(", ").join(cols),
        texts=sql.SQL(", ").join(sql.SQL("{}::text").format(c) for c in cols),
        notnull=sql.SQL(" AND ").join(sql.SQL("{} IS NOT NULL").format(c) for c in cols)))
    return cur.fetchall()


def _changed_collections(conn) -> set[str]:
    with conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT collection FROM {}.online_streams WHERE events > 0").format(state.STATE))
        return {r[0] for r in cur.fetchall()}


def _store_summary(conn, mapping: Mapping, source, error_log: str | None) -> dict[str, Any]:
    """The bulk's stored summary, its counts now those of the frozen source: reconciled, or not."""
    # a record is counted rejected by its last word in the log: the catch-up loads some again, removes others
    issues = list(state.stored_issues(conn))
    account = ErrorLogAccount().take(issues)
    anonymous = Counter(i.table for i in issues if i.severity == REJECT and not i.source_id)
    reports = reconcile(conn, mapping, source, {t.name: len(account.rejected.get(t.name, ())) + anonymous[t.name]
                                                for t in mapping.tables.values()})
    stored = state.stored_summary(conn) or {}
    with conn.cursor() as cur:
        junctions = {}
        for j in mapping.junctions:
            cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(j)))
            junctions[j] = dict(stored.get("junctions", {}).get(j, {}), rows=cur.fetchone()[0])
    conn.rollback()
    summary = Summary(status="complete" if all(t.reconciled for t in reports) else "unreconciled", online=True,
                      seconds=stored.get("totals", {}).get("seconds", 0.0), tables=reports, junctions=junctions,
                      unmapped_collections=stored.get("unmapped_collections", []),
                      unknown_fields=stored.get("unknown_fields", {}),
                      duplicate_links_merged=stored.get("duplicate_links_merged", 0),
                      error_log=error_log or stored.get("error_log", ""), source=stored.get("source", source.label),
                      target=stored.get("target", ""), stages=stored.get("stages", {})).to_json()
    state.store_summary(conn, summary)
    if error_log:
        write_error_log(Path(error_log), issues)
    return summary
