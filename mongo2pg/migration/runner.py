"""The migration run, in order: lock the target, apply and check its schema, load every table in
worker processes, settle dangling references, build the junctions, create indexes and foreign keys
and ANALYZE (side by side), then reconcile: per table, source = loaded + rejected.

Every step's progress lives in the target's `mongo2pg` schema, in the same transaction as the data it
describes; rerunning resumes, `fresh` restarts.
"""

from __future__ import annotations

import shutil
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg2
from psycopg2 import sql

from .. import schema
from ..connect import pg_connect
from ..errors import ConfigError, GuardTripped, Mongo2PgError
from ..issues import FIXUP, REJECT, write_error_log
from ..mapping import Mapping, load_mapping
from ..pooler import refuse_transaction_pooler
from ..redact import redact_uri
from ..reverse import capture
from ..source.readers import open_source
from ..stages import Stages
from . import state
from .blockers import LockWatch
from .load import plan_parts, record_split_tables, run_workers
from .options import Options
from .progress import Progress
from .retry import with_retries
from .settle import build_junctions, settle_references
from .summary import Summary, TableReport
from .unique import duplicates_by_table


def plan(opts: Options) -> dict[str, Any]:
    """What a run would do (check mode): tables in load order with source counts."""
    mapping = load_mapping(opts.mapping)
    source = open_source(opts.mongo_uri, opts.dump, opts.db)
    try:
        tables = [{"table": t.name, "collection": t.collection, "source": source.count(t.collection),
                   "absent_in_source": t.collection not in source.collections()} for t in mapping.tables.values()]
        unmapped = sorted(source.collections() - set(mapping.by_collection))
        size = source.size_bytes()
    finally:
        source.close()
    return {"mapping": mapping.name, "order": [t["table"] for t in tables], "tables": tables,
            "junctions": list(mapping.junctions), "unmapped_collections": unmapped,
            "total_source_documents": sum(t["source"] for t in tables), "source_bytes": size}


def run(opts: Options, render=None) -> Summary:
    started = time.monotonic()
    mapping = load_mapping(opts.mapping)
    source = open_source(opts.mongo_uri, opts.dump, opts.db)
    refuse_transaction_pooler(opts.pg_uri)
    session = [pg_connect(opts.pg_uri), False]  # the run's own session and whether it holds the one-run lock
    progress = Progress(opts, mapping, render)
    watch = LockWatch(opts.pg_uri, opts.hang_seconds, opts.on_hang,
                      lambda message: progress.handle({"event": "warning", "table": "(lock)", "message": message}))
    try:
        with watch:
            return _run(opts, mapping, source, session, progress, started)
    except (psycopg2.Error, Mongo2PgError) as exc:
        named = watch.failure(exc)
        if named is exc:
            raise
        raise named from None
    finally:
        if not session[0].closed:
            session[0].close()
        source.close()


def _run(opts: Options, mapping: Mapping, source, session: list, progress: Progress, started: float) -> Summary:
    """The run's body: its sessions and locks watched by the caller's LockWatch. session[0] is the run's own
    session (it holds the one-run lock), made again when a lost connection is retried before the load."""
    fresh = [opts.fresh]

    def prepare() -> Summary | list:
        """Up to the load; every step safe to do again on a new session after a lost connection (a fresh
        start only until the state was emptied)."""
        c = _holding_the_lock(opts, session)
        _apply_schema(c, mapping)
        capture.remove(c)  # capture starts at go-live: a migration's own writes are no change to sync back
        if fresh[0]:
            _archive(Path(opts.checkpoint_file))
            _archive(Path(opts.error_log))
            if opts.progress_sheet:
                _archive(Path(opts.progress_sheet))
        state.prepare(c, mapping, fresh[0], source.label, lambda cur: _empty_targets(c, cur, mapping))
        fresh[0] = False
        stored = state.stored_summary(c)
        if stored is not None and stored.get("status") == "complete":
            return Summary.from_json(stored, already_complete=True)  # rerunning a completed migration changes nothing
        write_error_log(Path(opts.error_log), state.stored_issues(c))
        tables = list(mapping.tables.values())
        # The most work first keeps both workers busy to the end.
        return plan_parts(c, opts, tables, {t.name: source.count(t.collection) for t in tables},
                          {t.name: source.work_hint(t.collection) for t in tables})

    parts = with_retries(prepare, opts.retry_seconds, progress, "(preparing)", opts.pg_uri)
    if isinstance(parts, Summary):
        return parts
    stages = Stages()
    progress.enter("unique-keys")
    with stages.timed("unique-key scan"):
        duplicates = duplicates_by_table(mapping, source)
    progress.enter("load")
    with stages.timed("load (wall)"):
        results = run_workers(opts, mapping, parts, progress, duplicates)
    for r in results:
        stages.update(r.get("stages", {}))
    failures = [r for r in results if r.get("error")]
    if failures:
        first = failures[0]
        exc = GuardTripped if first.get("guard") else ConfigError if first.get("config") else Mongo2PgError
        raise exc(first["error"])
    # session[0] stays open, idle, to the end: it holds the one-run-at-a-time lock through every post-load step.
    def post_load() -> Summary:
        _holding_the_lock(opts, session)
        return _post_load(opts, mapping, source, parts, results, progress, started, stages)

    summary = with_retries(post_load, opts.retry_seconds, progress, "(post-load)", opts.pg_uri)
    if summary.status == "complete":
        Path(opts.checkpoint_file).unlink(missing_ok=True)
    progress.finish(summary)
    return summary


def _holding_the_lock(opts: Options, session: list):
    """The run's own session with the one-run lock: the same one, or after a lost connection (a restart takes
    the session's lock with it, and an idle session learns of it only when it next speaks) a new one that
    takes the lock again."""
    c, locked = session
    if not c.closed:
        try:
            with c.cursor() as cur:
                cur.execute("SELECT 1")
            c.rollback()
        except psycopg2.Error:
            c.close()
    if c.closed:
        c, locked = pg_connect(opts.pg_uri), False
    if not locked:
        state.lock_target(c)
    session[:] = [c, True]
    return c


def _post_load(opts: Options, mapping: Mapping, source, parts, results, progress: Progress, started: float,
               stages: Stages) -> Summary:
    """Everything after the load, on a connection of its own (again after a lost connection: each step in
    it is checkpointed)."""
    conn = opts.connect_bulk()
    try:
        record_split_tables(conn, parts)
        progress.enter("references")
        with stages.timed("dangling references"):
            settle_references(opts, conn, mapping, source, progress)
        progress.enter("junctions")
        with stages.timed("junction build"):
            junctions = build_junctions(opts, conn, mapping, progress)
        if opts.finalize:
            progress.enter("finalize")
            render = progress.render
            with stages.timed("indexes, foreign keys, ANALYZE (wall)"):
                schema.finalize(conn, mapping, progress=lambda name: render and render(
                    {"event": "index", "name": name}, progress), connect=opts.connect_bulk,
                    workers=opts.worker_count(), stages=stages, analyze=True,
                    # online, the app may write a duplicate after the unique scan: those indexes wait for cutover
                    unique=not opts.online)
        with stages.timed("reconcile"):
            reports = reconcile(conn, mapping, source)
        write_error_log(Path(opts.error_log), state.stored_issues(conn))
        unknown: dict[str, Counter[str]] = defaultdict(Counter)
        for r in results:  # a split table's ranges each report theirs
            unknown[r["table"]].update(r.get("unknown_fields", {}))
        # Online, the source changes while it is read: its counts are proven after the catch-up, at cutover.
        summary = Summary(status="complete" if opts.online or all(t.reconciled for t in reports) else "unreconciled",
                          online=opts.online,
                          seconds=time.monotonic() - started, tables=reports, junctions=junctions,
                          unmapped_collections=sorted(source.collections() - set(mapping.by_collection)),
                          unknown_fields={t: dict(c) for t, c in unknown.items() if c}, error_log=opts.error_log,
                          source=source.label, target=redact_uri(opts.pg_uri),
                          duplicate_links_merged=sum(r.get("duplicate_links", 0) for r in results),
                          stages=stages.rounded())
        state.store_summary(conn, summary.to_json())
        return summary
    finally:
        if not conn.closed:
            conn.close()


def _apply_schema(conn, mapping: Mapping) -> None:
    """Create what is missing, then refuse a target that differs; a user without rights gets one clear line."""
    try:
        schema.apply(conn, mapping)
        state.create_state(conn, mapping)
    except (psycopg2.errors.InsufficientPrivilege, psycopg2.errors.ReadOnlySqlTransaction) as exc:
        conn.rollback()
        raise ConfigError(f"PostgreSQL refused to create the schema: {str(exc).strip().splitlines()[0]} -- the "
                          "migration user needs CONNECT, CREATE and TEMP on the database and USAGE, CREATE on schema "
                          "public (roles/postgresql grants them to postgresql_migration_user), and a writable "
                          "server (not a read-only replica)") from None
    schema.verify_applied(conn, mapping)


def _empty_targets(conn, cur, mapping: Mapping) -> None:
    """For --fresh: the target tables emptied, without their indexes and foreign keys (the load adds them)."""
    schema.unfinalize(conn, mapping)
    targets = [sql.Identifier(t) for t in list(mapping.tables) + list(mapping.junctions)]
    cur.execute(sql.SQL("TRUNCATE {} CASCADE").format(sql.SQL(", ").join(targets)))


def _archive(path: Path) -> Path | None:
    if not path.exists():
        return None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    dest = path.with_name(f"{path.stem}.{stamp}{path.suffix}")
    shutil.move(str(path), dest)
    return dest


def reconcile(conn, mapping: Mapping, source, rejected: dict[str, int] | None = None) -> list[TableReport]:
    """Per table: source count, rows in the target, rejects logged (or `rejected`, counted by the caller).
    Recomputed, not trusted from counters."""
    out = []
    with conn.cursor() as cur:
        counts = state.reject_counts(cur)
        if rejected is not None:
            counts.update({(t, REJECT): n for t, n in rejected.items()})
        for t in mapping.tables.values():
            cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t.name)))
            loaded = cur.fetchone()[0]
            cp = state.read_checkpoint(cur, f"table:{t.name}")
            out.append(TableReport(table=t.name, collection=t.collection, source=source.count(t.collection),
                                   loaded=loaded, rejected=counts.get((t.name, REJECT), 0),
                                   fixups=counts.get((t.name, FIXUP), 0), seconds=cp.seconds,
                                   absent=t.collection not in source.collections()))
    conn.rollback()
    return out
