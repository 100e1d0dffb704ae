"""The migration run: load entity tables (in parallel workers), settle dangling
references, build junction tables from both sides' arrays, create indexes and
foreign keys, then reconcile: per table, source = loaded + rejected.

Every step's progress lives in mongo2pg.checkpoint inside the target database, in
the same transaction as the data it describes; rerunning resumes, `fresh` restarts.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg2
from psycopg2 import sql
from pymongo.errors import AutoReconnect, ConnectionFailure

from . import schema
from .connect import BULK_SESSION, PG_TRANSIENT, pg_connect, run_on_connections
from .dumpfmt import to_extended_json
from .errors import ConfigError, ConnectionFailed, GuardTripped
from .ids import objectid_from_uuid
from .loader import STATE, Checkpoint, commit_batch, insert_issues, read_checkpoint, write_checkpoint
from .mapping import Mapping, Table, load_mapping
from .readers import ResumePoint, open_source, tune_gc_for_documents
from .redact import redact_uri
from .transform import Issue, TableTransform
from .workers import fork_pool

TRANSIENT = PG_TRANSIENT + (AutoReconnect, ConnectionFailure)
# The shape of the state in the target's mongo2pg schema; a run begun under another layout cannot resume.
STATE_LAYOUT = "2"


@dataclass
class Options:
    pg_uri: str
    mongo_uri: str | None = None
    dump: str | None = None
    db: str = "nextcrm"
    mapping: str = "nextcrm"
    batch_size: int = 5000
    workers: int = 0  # 0: sized to the machine
    error_log: str = "migration-errors.log"
    checkpoint_file: str = "migration-checkpoint.json"
    progress_file: str | None = None
    fresh: bool = False
    max_error_rate: float = 0.05
    min_free_disk: float = 0.10
    retry_seconds: float = 300.0
    finalize: bool = True
    # A dump collection of at least twice this many documents loads as ranges side by side (one per worker).
    split_documents: int = 100_000

    def worker_count(self) -> int:
        return self.workers if self.workers > 0 else max(1, min(4, os.cpu_count() or 1))

    def connect_bulk(self):
        """A connection for the whole-table statements after the load."""
        return pg_connect(self.pg_uri, settings=BULK_SESSION)


@dataclass
class TableReport:
    table: str
    collection: str
    source: int = 0
    loaded: int = 0
    rejected: int = 0
    fixups: int = 0
    seconds: float = 0.0
    absent: bool = False

    @property
    def reconciled(self) -> bool:
        return self.source == self.loaded + self.rejected


@dataclass
class Summary:
    status: str
    seconds: float
    tables: list[TableReport]
    junctions: dict[str, dict[str, int]]
    unmapped_collections: list[str]
    unknown_fields: dict[str, dict[str, int]] = field(default_factory=dict)
    duplicate_links_merged: int = 0
    already_complete: bool = False
    error_log: str = ""
    source: str = ""
    target: str = ""

    def totals(self) -> dict[str, Any]:
        src = sum(t.source for t in self.tables)
        loaded = sum(t.loaded for t in self.tables)
        rej = sum(t.rejected for t in self.tables)
        return {"source": src, "loaded": loaded, "rejected": rej, "fixups": sum(t.fixups for t in self.tables),
                "junction_rows": sum(j["rows"] for j in self.junctions.values()),
                "reconciled": all(t.reconciled for t in self.tables), "seconds": round(self.seconds, 2),
                "documents_per_second": round(src / self.seconds) if self.seconds else 0}

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "totals": self.totals(), "source": self.source, "target": self.target,
                # The rate from the unrounded seconds: a small table loads in well under a millisecond.
                "tables": [dict(asdict(t), seconds=round(t.seconds, 3), reconciled=t.reconciled,
                                records_per_second=round(t.source / t.seconds) if t.seconds else None)
                           for t in self.tables],
                "junctions": self.junctions, "unmapped_collections": self.unmapped_collections,
                "unknown_fields": self.unknown_fields, "duplicate_links_merged": self.duplicate_links_merged,
                "already_complete": self.already_complete,
                "error_log": self.error_log}


def _private_write(path: Path, text: str) -> None:
    """Atomic write with mode 0600 (these files can hold data)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def _append_issues(path: Path, issues: list[Issue]) -> None:
    if not issues:
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        for i in issues:
            f.write(json.dumps(issue_record(i), ensure_ascii=True) + "\n")


def issue_record(i: Issue) -> dict[str, Any]:
    rec = {"severity": i.severity, "table": i.table, "_id": i.source_id, "uuid": i.uuid, "reason": i.reason,
           "field": i.field, "message": i.message}
    if i.document is not None:
        rec["document"] = i.document
    return rec


# ---- phase 1: entity tables, one worker per table ---------------------------------------------

@dataclass(frozen=True)
class Part:
    """What one worker loads: a whole table, or one range of a big dump collection's document ordinals."""
    table: Table
    total: int  # documents in this part
    index: int | None = None  # None: the whole table
    start: int = 0
    stop: int | None = None

    @property
    def step(self) -> str:
        return f"table:{self.table.name}" + ("" if self.index is None else f"#{self.index}")

    @property
    def label(self) -> str:
        return self.table.name + ("" if self.index is None else f"#{self.index}")


def plan_parts(conn, opts: Options, tables: list[Table], counts: dict[str, int]) -> list[Part]:
    """The parts to load, biggest first. A big collection of a dump splits into ordinal ranges, one per
    worker (a live source reads whole collections in _id order). The split is stored with the run's
    state the first time, so a resumed run uses the same ranges whatever its worker count."""
    workers = opts.worker_count()
    parts: list[Part] = []
    with conn.cursor() as cur:
        for t in tables:
            n = counts[t.name]
            key = f"parts:{t.name}"
            cur.execute(sql.SQL("SELECT value FROM {}.run WHERE key = %s").format(STATE), (key,))
            row = cur.fetchone()
            if row:
                bounds = json.loads(row[0])
            elif opts.dump and workers > 1 and n >= 2 * opts.split_documents > 0:
                k = min(workers, n // opts.split_documents)
                bounds = [[n * i // k, n * (i + 1) // k] for i in range(k)]
                cur.execute(sql.SQL("INSERT INTO {}.run (key, value) VALUES (%s, %s)").format(STATE),
                            (key, json.dumps(bounds)))
            else:
                bounds = None
            if bounds is None:
                parts.append(Part(t, n))
            else:
                parts += [Part(t, b - a, i, a, b) for i, (a, b) in enumerate(bounds)]
    conn.commit()
    return sorted(parts, key=lambda p: -p.total)


def _record_split_tables(conn, parts: list[Part]) -> None:
    """A split table's own step, once every range is loaded: the ranges' figures added up (seconds: the
    longest range, as the table's wall time), so what follows reads one step per table as for any other."""
    by_table: dict[str, list[Part]] = {}
    for p in parts:
        if p.index is not None:
            by_table.setdefault(p.table.name, []).append(p)
    with conn.cursor() as cur:
        for name, group in by_table.items():
            cps = [read_checkpoint(cur, p.step) for p in group]
            if all(cp.done for cp in cps):
                write_checkpoint(cur, Checkpoint(f"table:{name}", sum(c.position for c in cps), None,
                                                 sum(c.loaded for c in cps), sum(c.rejected for c in cps),
                                                 sum(c.fixups for c in cps), True, max(c.seconds for c in cps)))
    conn.commit()


def _load_table(opts: Options, mapping: Mapping, part: Part, events) -> dict[str, Any]:
    """Load one part from its checkpoint to its end, retrying transient failures."""
    tune_gc_for_documents()
    deadline = time.monotonic() + opts.retry_seconds
    delay = 1.0
    table, total, step, label = part.table, part.total, part.step, part.label
    transform = TableTransform(mapping, table)
    attempt = 0
    while True:
        attempt += 1
        source = conn = None
        try:
            source = open_source(opts.mongo_uri, opts.dump, opts.db)
            conn = pg_connect(opts.pg_uri, "mongo2pg-load")
            with conn.cursor() as cur:
                cp = read_checkpoint(cur, step)
            conn.rollback()
            if cp.done:
                return {"table": table.name, "skipped": True}
            data_dir = _data_directory(conn)
            events.put({"event": "start", "table": label, "total": total, "position": cp.position,
                        "loaded": cp.loaded, "rejected": cp.rejected})
            batch_started = time.monotonic()
            resume = ResumePoint(part.start + cp.position, cp.last_id)
            for batch in source.batches(table.collection, resume, opts.batch_size, stop=part.stop):
                result = transform.convert_batch(batch)
                last = batch[-1].get("_id")
                issues = commit_batch(conn, table.name, transform.columns, result, cp, len(batch),
                                      str(last) if last is not None else None, batch_started)
                batch_started = time.monotonic()
                events.put({"event": "batch", "table": label, "total": total, "position": cp.position,
                            "loaded": cp.loaded, "rejected": cp.rejected, "fixups": cp.fixups,
                            "issues": [issue_record(i) for i in issues], "last_id": cp.last_id})
                if cp.position >= 100 and cp.rejected / cp.position > opts.max_error_rate:
                    raise GuardTripped(f"{label}: {cp.rejected} of {cp.position} records rejected "
                                       f"({cp.rejected / cp.position:.1%}) exceeds --max-error-rate "
                                       f"{opts.max_error_rate:.1%}; checkpointed. Inspect {opts.error_log}, fix the "
                                       "data or the mapping, then rerun (it resumes) or raise the threshold")
                _check_disk(data_dir, opts.min_free_disk)
            with conn.cursor() as cur:
                cp.done = True
                write_checkpoint(cur, cp)
            conn.commit()
            events.put({"event": "done", "table": label, "total": total, "position": cp.position,
                        "loaded": cp.loaded, "rejected": cp.rejected, "fixups": cp.fixups, "seconds": cp.seconds})
            return {"table": table.name, "unknown_fields": dict(transform.unknown_fields),
                    "duplicate_links": transform.duplicate_links}
        except TRANSIENT + (ConnectionFailed,) as exc:
            # A refused first connection is a configuration problem; a later one is an outage to wait out.
            if (isinstance(exc, ConnectionFailed) and attempt == 1) or time.monotonic() + delay > deadline:
                raise
            events.put({"event": "retry", "table": label, "message": str(exc).strip().splitlines()[0][:200],
                        "delay": delay})
            time.sleep(delay)
            delay = min(delay * 2, 15.0)
        except psycopg2.errors.DiskFull as exc:
            raise GuardTripped(f"{table.name}: the target disk is full ({exc.pgerror.strip().splitlines()[0]}); "
                               "the last batch was rolled back, free space and rerun (it resumes)") from None
        except psycopg2.errors.ReadOnlySqlTransaction:
            raise ConfigError("the target database is read-only (hot standby or default_transaction_read_only): "
                              "point --pg-uri at the primary") from None
        finally:
            if conn is not None:
                conn.close()
            if source is not None:
                source.close()


def _data_directory(conn) -> str | None:
    """The target's data directory, when this role may read it (superuser or pg_read_all_settings)."""
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT current_setting('data_directory')")
            return cur.fetchone()[0]
    except psycopg2.Error:
        return None
    finally:
        conn.rollback()


def _check_disk(path: str | None, min_free: float) -> None:
    """Stop cleanly when the target's data directory is nearly full (when it is visible from here)."""
    if not path:
        return
    try:
        st = os.statvfs(path)
    except OSError:
        return
    free = st.f_bavail / st.f_blocks if st.f_blocks else 1.0
    if free < min_free:
        raise GuardTripped(f"free disk on the target's data directory is {free:.1%} (< {min_free:.0%}); "
                           "checkpointed: free space, then rerun")


_EVENTS = None  # the workers' event queue to the parent (set by _run_workers before it forks them)


def _worker(args):
    opts, mapping, part, events = args
    events = events or _EVENTS
    try:
        return _load_table(opts, mapping, part, events)
    except Exception as exc:  # noqa: BLE001 - carried to the parent, which decides
        return {"table": part.table.name, "error": f"{type(exc).__name__}: {exc}",
                "guard": isinstance(exc, GuardTripped), "config": isinstance(exc, ConfigError)}


# ---- phase 2: dangling references, set-based --------------------------------------------------

def settle_references(opts: Options, conn, mapping: Mapping, source, events) -> None:
    """Apply each reference's on_dangling policy. Rejects go first, parents first, so that they cascade
    (a rejected parent's children dangle in turn); the other policies then run side by side, a table
    per connection (two UPDATEs of one table at once could lock its rows in opposite orders)."""
    others: dict[str, list] = {}
    for t in mapping.tables.values():
        for col in t.columns:
            if col.references and col.on_dangling == "reject":
                _report_issues(events, t.name, _settle_column(conn, mapping, source, t, col))
            elif col.references:
                others.setdefault(t.name, []).append(col)

    def job(t: Table, cols: list):
        return lambda c: (t.name, [i for col in cols for i in _settle_column(c, mapping, None, t, col)])

    jobs = [job(mapping.tables[name], cols) for name, cols in others.items()]
    for table, issues in run_on_connections(opts.connect_bulk, jobs, opts.worker_count()):
        _report_issues(events, table, issues)


def _report_issues(events, table: str, issues: list[Issue]) -> None:
    if issues:
        events.put({"event": "issues", "table": table, "issues": [issue_record(i) for i in issues]})


def _settle_column(conn, mapping: Mapping, source, t: Table, col) -> list[Issue]:
    """One reference column's dangling values, per its policy, committed with its checkpoint."""
    step = f"refs:{t.name}.{col.name}"
    with conn.cursor() as cur:
        cp = read_checkpoint(cur, step)
        if cp.done:
            conn.rollback()
            return []
        parent = mapping.tables[col.references]
        tid, cid, pid = sql.Identifier(t.name), sql.Identifier(col.name), sql.Identifier(parent.name)
        dangling = sql.SQL("c.{col} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {p} p WHERE p.{ppk} = c.{col})").format(
            col=cid, p=pid, ppk=sql.Identifier(parent.pk.name))
        issues: list[Issue] = []
        if col.on_dangling == "reject":
            cur.execute(sql.SQL("DELETE FROM {t} c WHERE {cond} RETURNING c.id::text, c.{col}::text").format(
                t=tid, cond=dangling, col=cid))
            rows = cur.fetchall()
            originals = source.fetch(t.collection, {str(objectid_from_uuid(u)) for u, _ in rows}) if rows else {}
            for u, ref in rows:
                oid = str(objectid_from_uuid(u))
                issues.append(Issue("reject", t.name, oid, u, "dangling_reference", col.source,
                                    f"required reference {col.source} -> {parent.name} {ref} does not exist",
                                    to_extended_json(originals.get(oid))))
            tcp = read_checkpoint(cur, f"table:{t.name}")
            tcp.loaded -= len(rows)
            tcp.rejected += len(rows)
            write_checkpoint(cur, tcp)
        elif col.on_dangling == "null":
            cur.execute(sql.SQL("""UPDATE {t} c SET {col} = NULL FROM
                                   (SELECT c.id, c.{col} AS old FROM {t} c WHERE {cond}) d
                                   WHERE c.id = d.id RETURNING c.id::text, d.old::text""").format(
                t=tid, col=cid, cond=dangling))
            for u, ref in cur.fetchall():
                issues.append(Issue("fixup", t.name, str(objectid_from_uuid(u)), u, "dangling_reference",
                                    col.source, f"reference {col.source} -> {parent.name} {ref} does not "
                                    "exist: set to NULL (policy on_dangling: null)"))
        else:
            cur.execute(sql.SQL("SELECT c.id::text, c.{col}::text FROM {t} c WHERE {cond}").format(
                t=tid, col=cid, cond=dangling))
            for u, ref in cur.fetchall():
                issues.append(Issue("fixup", t.name, None, u, "dangling_reference_kept", col.source,
                                    f"reference {col.source} -> {parent.name} {ref} does not exist: kept "
                                    "(policy on_dangling: keep; the foreign key is created NOT VALID)"))
        insert_issues(cur, issues)
        cp.done, cp.fixups = True, sum(1 for i in issues if i.severity == "fixup")
        cp.rejected = sum(1 for i in issues if i.severity == "reject")
        write_checkpoint(cur, cp)
    conn.commit()
    return issues


# ---- phase 3: junction tables from the staged links of both sides ----------------------------

def build_junctions(opts: Options, conn, mapping: Mapping, events) -> dict[str, dict[str, int]]:
    """Every junction from its own partition of the link stage, side by side; the stage is emptied last."""
    jobs = [lambda c, j=j: _build_junction(c, mapping, j) for j in mapping.junctions.values()]
    out: dict[str, dict[str, int]] = {}
    for name, stats, issues in run_on_connections(opts.connect_bulk, jobs, opts.worker_count()):
        out[name] = stats
        _report_issues(events, name, issues)
    with conn.cursor() as cur:
        # Every junction's checkpoint is done: the staged links are no longer needed (a rerun skips them).
        cur.execute(sql.SQL("TRUNCATE {}.link_stage").format(STATE))
    conn.commit()
    return {name: out[name] for name in mapping.junctions}


def _build_junction(conn, mapping: Mapping, j) -> tuple[str, dict[str, int], list[Issue]]:
    step = f"junction:{j.name}"
    issues: list[Issue] = []
    with conn.cursor() as cur:
        cp = read_checkpoint(cur, step)
        if not cp.done:
            lt, rt = mapping.tables[j.left.references], mapping.tables[j.right.references]
            exists_l = sql.SQL("EXISTS (SELECT 1 FROM {} x WHERE x.{} = s.left_id)").format(
                sql.Identifier(lt.name), sql.Identifier(lt.pk.name))
            exists_r = sql.SQL("EXISTS (SELECT 1 FROM {} x WHERE x.{} = s.right_id)").format(
                sql.Identifier(rt.name), sql.Identifier(rt.pk.name))
            cur.execute(sql.SQL("SELECT count(*) FROM {}.link_stage WHERE junction = %s").format(STATE), (j.name,))
            staged = cur.fetchone()[0]
            # The table is empty here (its rows commit with its checkpoint). A primary key built once after
            # the insert costs a fraction of one maintained row by row; DISTINCT keeps it unique, and a
            # duplicate would fail the ADD loudly. The same transaction, so a kill leaves the key as it was.
            jid, pkey = sql.Identifier(j.name), sql.Identifier(f"{j.name}_pkey")
            cols = sql.SQL(", ").join([sql.Identifier(j.left.column), sql.Identifier(j.right.column)])
            cur.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}").format(jid, pkey))
            cur.execute(sql.SQL("""INSERT INTO {j} ({cols})
                                   SELECT DISTINCT s.left_id, s.right_id FROM {st}.link_stage s
                                   WHERE s.junction = %s AND {el} AND {er}""").format(
                j=jid, cols=cols, st=STATE, el=exists_l, er=exists_r), (j.name,))
            inserted = cur.rowcount
            cur.execute(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} PRIMARY KEY ({})").format(jid, pkey, cols))
            # Two anti-joins (hash joins), not one OR of subplans (an index probe per staged link).
            cur.execute(sql.SQL("""SELECT s.left_id::text, s.right_id::text, s.source_collection, s.source_field, false
                                   FROM {st}.link_stage s WHERE s.junction = %s AND NOT {el}
                                   UNION
                                   SELECT s.left_id::text, s.right_id::text, s.source_collection, s.source_field, true
                                   FROM {st}.link_stage s WHERE s.junction = %s AND {el} AND NOT {er}""").format(
                st=STATE, el=exists_l, er=exists_r), (j.name, j.name))
            for left, right, coll, fld, l_ok in cur.fetchall():
                owner_is_left = lt.collection == coll and any(s.field == fld and s.holds == "right" for s in j.sources)
                owner = left if owner_is_left else right
                missing = (rt.name, right) if l_ok else (lt.name, left)
                issues.append(Issue("fixup", j.name, str(objectid_from_uuid(owner)), owner, "junction_dangling",
                                    f"{coll}.{fld}", f"link to {missing[0]} {missing[1]} dropped: that record "
                                    "does not exist in the target (absent or rejected)"))
            insert_issues(cur, issues)
            cp.loaded, cp.fixups, cp.position, cp.done = inserted, len(issues), staged, True
            write_checkpoint(cur, cp)
        cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(j.name)))
        stats = {"rows": cur.fetchone()[0], "links_staged": cp.position, "dangling_links": cp.fixups}
    conn.commit()
    return j.name, stats, issues


# ---- the run ---------------------------------------------------------------------------------

def _archive(path: Path) -> Path | None:
    if not path.exists():
        return None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    dest = path.with_name(f"{path.stem}.{stamp}{path.suffix}")
    shutil.move(str(path), dest)
    return dest


def _prepare_state(conn, mapping: Mapping, opts: Options, source_label: str) -> None:
    with conn.cursor() as cur:
        targets = [sql.Identifier(t) for t in list(mapping.tables) + list(mapping.junctions)]
        if opts.fresh:
            schema.unfinalize(conn, mapping)
            cur.execute(sql.SQL("TRUNCATE {} CASCADE").format(sql.SQL(", ").join(targets)))
            for t in ("checkpoint", "rejects", "link_stage", "run"):
                cur.execute(sql.SQL("TRUNCATE {}.{}").format(STATE, sql.Identifier(t)))
            cur.execute(sql.SQL("DROP TABLE IF EXISTS {}.junction_stage").format(STATE))  # layout 1's link stage
        cur.execute(sql.SQL("SELECT key, value FROM {}.run WHERE key IN ('mapping_digest', 'state_layout')").format(STATE))
        stored = dict(cur.fetchall())
        digest = stored.get("mapping_digest")
        if digest is not None and digest != mapping.digest:
            raise ConfigError(f"the mapping changed since this run started (digest {digest} -> {mapping.digest}); "
                              "rerun with --fresh to start over with the new mapping")
        if digest is not None and stored.get("state_layout") != STATE_LAYOUT:
            raise ConfigError("this run was started by an earlier mongo2pg whose checkpoint layout differs (layout "
                              f"{stored.get('state_layout', '1')}, this one writes {STATE_LAYOUT}): rerun with --fresh")
        if digest is None:
            for t in targets:
                cur.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(t))
                if cur.fetchone()[0]:
                    raise ConfigError(f"target table {t.string} already holds rows and there is no checkpoint of a "
                                      "run: rerun with --fresh to empty the target tables and start over")
            for key, value in (("mapping_digest", mapping.digest), ("state_layout", STATE_LAYOUT),
                               ("mapping", mapping.name), ("source", source_label),
                               ("started_at", datetime.now(UTC).isoformat())):
                cur.execute(sql.SQL("INSERT INTO {}.run (key, value) VALUES (%s, %s) ON CONFLICT (key) DO UPDATE "
                                    "SET value = EXCLUDED.value").format(STATE), (key, value))
    conn.commit()


def rewrite_error_log(conn, path: Path) -> int:
    """The error log mirrors mongo2pg.rejects exactly (no duplicates after a resume)."""
    with conn.cursor(name="m2p_rejects") as cur:
        cur.itersize = 5000
        cur.execute(sql.SQL("SELECT severity, tbl, source_id, uuid, reason, field, message, document "
                            "FROM {}.rejects ORDER BY seq").format(STATE))
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        n = 0
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for row in cur:
                f.write(json.dumps(issue_record(Issue(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7])),
                                   ensure_ascii=True) + "\n")
                n += 1
    conn.rollback()
    os.replace(tmp, path)
    return n


class Progress:
    """Collects worker events; keeps the checkpoint mirror and the progress file current."""

    def __init__(self, opts: Options, mapping: Mapping, render=None):
        self.opts, self.render = opts, render
        self.state: dict[str, dict[str, Any]] = {}
        self.started = time.monotonic()
        self.error_log = Path(opts.error_log)
        self.checkpoint = Path(opts.checkpoint_file)
        self.progress = Path(opts.progress_file) if opts.progress_file else None
        self.mapping = mapping
        self.phase = "load"

    def handle(self, ev: dict[str, Any]) -> None:
        if ev.get("issues"):
            _append_issues(self.error_log, [Issue(**{("source_id" if k == "_id" else k): v for k, v in rec.items()})
                                            for rec in ev["issues"]])
        if ev["event"] in ("start", "batch", "done"):
            st = self.state.setdefault(ev["table"], {"started": time.monotonic()})
            st.update({k: ev[k] for k in ("total", "position", "loaded", "rejected") if k in ev})
            st["done"] = ev["event"] == "done"
            if ev["event"] == "start":
                st["started"], st["start_position"] = time.monotonic(), ev["position"]
        self.write()
        if self.render:
            self.render(ev, self)

    def snapshot(self) -> dict[str, Any]:
        total = sum(s.get("total", 0) for s in self.state.values())
        done = sum(s.get("position", 0) for s in self.state.values())
        elapsed = time.monotonic() - self.started
        return {"updated_at": datetime.now(UTC).isoformat(), "phase": self.phase, "elapsed_seconds": round(elapsed, 1),
                "records_done": done, "records_known": total,
                "tables": {t: {k: v for k, v in s.items() if k not in ("started", "start_position")}
                           for t, s in self.state.items()}}

    def write(self) -> None:
        snap = self.snapshot()
        mirror = {"version": "mongo2pg-1", "mapping": self.mapping.name, "mapping_digest": self.mapping.digest,
                  "note": "mirror for humans; the authoritative state is the mongo2pg.checkpoint table", **snap}
        _private_write(self.checkpoint, json.dumps(mirror, indent=1))
        if self.progress:
            _private_write(self.progress, json.dumps(snap))


def _drain(queue, progress: Progress) -> None:
    while True:
        try:
            ev = queue.get_nowait()
        except Exception:  # noqa: BLE001 - queue.Empty from either queue kind
            return
        progress.handle(ev)


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


def _lock_target(conn) -> None:
    """One migration per target database at a time: a session advisory lock, released when the run ends
    (or its process dies). A second run, e.g. started while an orphaned async job still works, is refused."""
    with conn.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(hashtext('mongo2pg.migrate'))")
        if not cur.fetchone()[0]:
            cur.execute("SELECT pid, backend_start::text FROM pg_stat_activity WHERE datname = current_database() "
                        "AND application_name = 'mongo2pg' AND pid <> pg_backend_pid() ORDER BY backend_start LIMIT 1")
            other = cur.fetchone()
            conn.rollback()
            raise ConfigError("another migration is running against this database"
                              + (f" (PostgreSQL backend pid {other[0]}, since {other[1]})" if other else "")
                              + ": wait for it to finish (its progress file shows it) or stop it, then rerun")
    conn.commit()


def _apply_schema(conn, mapping: Mapping) -> None:
    """Create what is missing, then refuse a target that differs; a user without rights gets one clear line."""
    try:
        schema.apply(conn, mapping)
    except (psycopg2.errors.InsufficientPrivilege, psycopg2.errors.ReadOnlySqlTransaction) as exc:
        conn.rollback()
        raise ConfigError(f"PostgreSQL refused to create the schema: {str(exc).strip().splitlines()[0]} -- the "
                          "migration user needs CONNECT, CREATE and TEMP on the database and USAGE, CREATE on schema "
                          "public (roles/postgresql grants them to postgresql_migration_user), and a writable "
                          "server (not a read-only replica)") from None
    schema.verify_applied(conn, mapping)


def run(opts: Options, render=None) -> Summary:
    started = time.monotonic()
    mapping = load_mapping(opts.mapping)
    source = open_source(opts.mongo_uri, opts.dump, opts.db)
    source_label = source.label
    conn = pg_connect(opts.pg_uri)
    try:
        _lock_target(conn)
        _apply_schema(conn, mapping)
        error_log = Path(opts.error_log)
        if opts.fresh:
            _archive(Path(opts.checkpoint_file))
            _archive(error_log)
        _prepare_state(conn, mapping, opts, source_label)
        done = _completed_summary(conn)
        if done is not None:
            return done
        rewrite_error_log(conn, error_log)
        progress = Progress(opts, mapping, render)
        unmapped = sorted(source.collections() - set(mapping.by_collection))
        tables = list(mapping.tables.values())
        # Biggest first keeps both workers busy to the end.
        parts = plan_parts(conn, opts, tables, {t.name: source.count(t.collection) for t in tables})
        results = _run_workers(opts, mapping, parts, progress)
        failures = [r for r in results if r.get("error")]
        if failures:
            first = failures[0]
            exc = GuardTripped if first.get("guard") else ConfigError if first.get("config") else RuntimeError
            raise exc(first["error"])
        def post_load(pconn) -> Summary:
            _record_split_tables(pconn, parts)
            progress.phase = "references"
            progress.write()
            settle_references(opts, pconn, mapping, source, _Inline(progress))
            progress.phase = "junctions"
            progress.write()
            junctions = build_junctions(opts, pconn, mapping, _Inline(progress))
            if opts.finalize:
                progress.phase = "finalize"
                progress.write()
                schema.finalize(pconn, mapping, progress=lambda name: render and render(
                    {"event": "index", "name": name}, progress), connect=opts.connect_bulk, workers=opts.worker_count())
                tables = list(mapping.tables) + list(mapping.junctions)
                for _ in run_on_connections(opts.connect_bulk, [_analyze(t) for t in tables], opts.worker_count()):
                    pass
            reports = reconcile(pconn, mapping, source)
            rewrite_error_log(pconn, error_log)
            unknown: dict[str, Counter[str]] = defaultdict(Counter)
            for r in results:  # a split table's ranges each report theirs
                unknown[r["table"]].update(r.get("unknown_fields", {}))
            summary = Summary(status="complete" if all(t.reconciled for t in reports) else "unreconciled",
                              seconds=time.monotonic() - started, tables=reports, junctions=junctions,
                              unmapped_collections=unmapped,
                              unknown_fields={t: dict(c) for t, c in unknown.items() if c}, error_log=str(error_log),
                              source=source_label, target=redact_uri(opts.pg_uri),
                              duplicate_links_merged=sum(r.get("duplicate_links", 0) for r in results))
            with pconn.cursor() as cur:
                cur.execute(sql.SQL("INSERT INTO {}.run (key, value) VALUES ('summary', %s) ON CONFLICT (key) "
                                    "DO UPDATE SET value = EXCLUDED.value").format(STATE),
                            (json.dumps(summary.to_json()),))
            pconn.commit()
            return summary

        conn.close()
        summary = _with_reconnect(opts, post_load, _Inline(progress))
        if summary.status == "complete":
            Path(opts.checkpoint_file).unlink(missing_ok=True)
        progress.phase = "complete"
        if progress.progress:
            _private_write(progress.progress, json.dumps({**progress.snapshot(), "summary": summary.totals()}))
        return summary
    finally:
        if not conn.closed:
            conn.close()
        source.close()


def _analyze(table: str):
    """ANALYZE one target table (planner statistics for the application's first queries)."""
    def run(conn) -> None:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))
        conn.commit()
    return run


def _with_reconnect(opts: Options, fn, events):
    """Run fn(conn) on a fresh connection, again after a lost connection: every step in it is checkpointed."""
    deadline = time.monotonic() + opts.retry_seconds
    delay = 1.0
    while True:
        conn = None
        try:
            conn = opts.connect_bulk()
            return fn(conn)
        except TRANSIENT + (ConnectionFailed,) as exc:
            if time.monotonic() + delay > deadline:
                raise
            events.put({"event": "retry", "table": "(post-load)", "message": str(exc).strip().splitlines()[0][:200],
                        "delay": delay})
            time.sleep(delay)
            delay = min(delay * 2, 15.0)
        finally:
            if conn is not None and not conn.closed:
                conn.close()


def _completed_summary(conn) -> Summary | None:
    """A finished run's stored summary: rerunning a completed migration changes nothing."""
    with conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT value FROM {}.run WHERE key = 'summary'").format(STATE))
        row = cur.fetchone()
    conn.rollback()
    if row is None:
        return None
    data = json.loads(row[0])
    if data.get("status") != "complete":
        return None
    tables = [TableReport(**{k: t[k] for k in ("table", "collection", "source", "loaded", "rejected", "fixups",
                                                "seconds", "absent")}) for t in data["tables"]]
    return Summary(status="complete", seconds=data["totals"]["seconds"], tables=tables, junctions=data["junctions"],
                   unmapped_collections=data["unmapped_collections"], unknown_fields=data["unknown_fields"],
                   duplicate_links_merged=data.get("duplicate_links_merged", 0), already_complete=True,
                   error_log=data["error_log"], source=data["source"], target=data["target"])


class _Inline:
    """Events from the parent process go straight to the progress collector."""

    def __init__(self, progress: Progress):
        self.progress = progress

    def put(self, ev: dict[str, Any]) -> None:
        self.progress.handle(ev)


def _run_workers(opts: Options, mapping: Mapping, parts: list[Part], progress: Progress) -> list[dict[str, Any]]:
    n = min(opts.worker_count(), len(parts))
    if n <= 1:
        inline = _Inline(progress)
        out = []
        for p in parts:
            r = _worker((opts, mapping, p, inline))
            out.append(r)
            if r.get("error"):
                break
        return out
    global _EVENTS
    # Inherited by the forked workers (a queue passed as an argument would need a manager process).
    _EVENTS = events = mp.get_context("fork").Queue()
    results: list[dict[str, Any]] = []
    with fork_pool(n) as pool:
        pending = pool.imap_unordered(_worker, [(opts, mapping, p, None) for p in parts])
        it = iter(pending)
        while True:
            try:
                r = it.next(timeout=0.2)
            except mp.TimeoutError:
                _drain(events, progress)
                continue
            except StopIteration:
                break
            _drain(events, progress)
            results.append(r)
            if r.get("error"):
                pool.terminate()
                break
    _drain(events, progress)
    return results


def reconcile(conn, mapping: Mapping, source) -> list[TableReport]:
    """Per table: source count, rows in the target, rejects logged. Recomputed, not trusted from counters."""
    out = []
    with conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT tbl, severity, count(*) FROM {}.rejects GROUP BY 1, 2").format(STATE))
        counts = {(t, s): n for t, s, n in cur.fetchall()}
        for t in mapping.tables.values():
            cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t.name)))
            loaded = cur.fetchone()[0]
            cp = read_checkpoint(cur, f"table:{t.name}")
            out.append(TableReport(table=t.name, collection=t.collection, source=source.count(t.collection),
                                   loaded=loaded, rejected=counts.get((t.name, "reject"), 0),
                                   fixups=counts.get((t.name, "fixup"), 0), seconds=cp.seconds,
                                   absent=t.collection not in source.collections()))
    conn.rollback()
    return out


def status(pg_uri: str) -> dict[str, Any]:
    conn = pg_connect(pg_uri)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('mongo2pg.checkpoint') IS NOT NULL")
            if not cur.fetchone()[0]:
                return {"state": "none"}
            cur.execute(sql.SQL("SELECT step, position, loaded, rejected, fixups, done FROM {}.checkpoint "
                                "ORDER BY step").format(STATE))
            steps = [dict(zip(("step", "position", "loaded", "rejected", "fixups", "done"), r, strict=True))
                     for r in cur.fetchall()]
            cur.execute(sql.SQL("SELECT key, value FROM {}.run").format(STATE))
            run_info = dict(cur.fetchall())
        return {"state": "complete" if "summary" in run_info else ("in-progress" if steps else "none"),
                "steps": steps, "run": {k: v for k, v in run_info.items() if k != "summary"}}
    finally:
        conn.close()


__all__ = ["Options", "Summary", "TableReport", "run", "plan", "status", "Checkpoint"]
