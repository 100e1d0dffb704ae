"""The load: every entity table (or range of a big dump collection) in a worker process of its own,
batch by batch from its checkpoint, with the error-rate and free-disk guards after each batch."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
from dataclasses import dataclass
from typing import Any

import psycopg2

from ..connect import pg_connect
from ..errors import ConfigError, GuardTripped
from ..issues import Issue
from ..mapping import Mapping, Table
from ..readers import ResumePoint, open_source, tune_gc_for_documents
from ..transform import TableTransform
from ..workers import fork_pool
from .copy import commit_batch
from .options import Options
from .progress import Progress
from .retry import with_retries
from .state import Checkpoint, get_key, read_checkpoint, set_key, write_checkpoint


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
            stored = get_key(cur, key)
            if stored:
                bounds = json.loads(stored)
            elif opts.dump and workers > 1 and n >= 2 * opts.split_documents > 0:
                k = min(workers, n // opts.split_documents)
                bounds = [[n * i // k, n * (i + 1) // k] for i in range(k)]
                set_key(cur, key, json.dumps(bounds))
            else:
                bounds = None
            if bounds is None:
                parts.append(Part(t, n))
            else:
                parts += [Part(t, b - a, i, a, b) for i, (a, b) in enumerate(bounds)]
    conn.commit()
    return sorted(parts, key=lambda p: -p.total)


def record_split_tables(conn, parts: list[Part]) -> None:
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


def load_part(opts: Options, mapping: Mapping, part: Part, events,
              duplicates: dict[str, Issue] | None = None) -> dict[str, Any]:
    """Load one part from its checkpoint to its end, retrying transient failures; `duplicates` are the
    table's documents that lose a unique key (unique.py), rejected as they come."""
    tune_gc_for_documents()
    transform = TableTransform(mapping, part.table, duplicates)
    try:
        return with_retries(lambda: _load_from_checkpoint(opts, part, transform, events), opts.retry_seconds,
                            events, part.label, first_refusal_is_config=True)
    except psycopg2.errors.DiskFull as exc:
        raise GuardTripped(f"{part.table.name}: the target disk is full ({exc.pgerror.strip().splitlines()[0]}); "
                           "the last batch was rolled back, free space and rerun (it resumes)") from None
    except psycopg2.errors.ReadOnlySqlTransaction:
        raise ConfigError("the target database is read-only (hot standby or default_transaction_read_only): "
                          "point --pg-uri at the primary") from None


def _load_from_checkpoint(opts: Options, part: Part, transform: TableTransform, events) -> dict[str, Any]:
    table, total, label = part.table, part.total, part.label
    source = conn = None
    try:
        source = open_source(opts.mongo_uri, opts.dump, opts.db)
        conn = pg_connect(opts.pg_uri, "mongo2pg-load")
        with conn.cursor() as cur:
            cp = read_checkpoint(cur, part.step)
        conn.rollback()
        if cp.done:
            return {"table": table.name, "skipped": True}
        data_dir = _data_directory(conn)
        events.put({"event": "start", "table": label, "total": total, "position": cp.position,
                    "loaded": cp.loaded, "rejected": cp.rejected})
        batch_started = time.monotonic()
        resume = ResumePoint(part.start + cp.position, cp.last_id)
        for batch in source.batches(table.collection, resume, opts.batch_size, stop=part.stop,
                                    max_bytes=opts.batch_bytes):
            result = transform.convert_batch(batch)
            last = batch[-1].get("_id")
            issues = commit_batch(conn, table.name, transform.columns, result, cp, len(batch),
                                  str(last) if last is not None else None, batch_started)
            del batch, result  # a batch's documents are the run's memory: free them before the next read
            batch_started = time.monotonic()
            events.put({"event": "batch", "table": label, "total": total, "position": cp.position,
                        "loaded": cp.loaded, "rejected": cp.rejected, "fixups": cp.fixups,
                        "issues": issues, "last_id": cp.last_id})
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


_EVENTS = None  # the workers' event queue to the parent (set by run_workers before it forks them)


def _worker(args):
    opts, mapping, part, events, duplicates = args
    events = events or _EVENTS
    try:
        return load_part(opts, mapping, part, events, duplicates)
    except Exception as exc:  # noqa: BLE001 - carried to the parent, which decides
        return {"table": part.table.name, "error": f"{type(exc).__name__}: {exc}",
                "guard": isinstance(exc, GuardTripped), "config": isinstance(exc, ConfigError)}


def run_workers(opts: Options, mapping: Mapping, parts: list[Part], progress: Progress,
                duplicates: dict[str, dict[str, Issue]]) -> list[dict[str, Any]]:
    """Every part, in worker processes (or in this one with one worker); stops at the first failure."""
    n = min(opts.worker_count(), len(parts))
    if n <= 1:
        out = []
        for p in parts:
            r = _worker((opts, mapping, p, progress, duplicates.get(p.table.name)))
            out.append(r)
            if r.get("error"):
                break
        return out
    global _EVENTS
    # Inherited by the forked workers (a queue passed as an argument would need a manager process).
    _EVENTS = events = mp.get_context("fork").Queue()
    results: list[dict[str, Any]] = []
    with fork_pool(n) as pool:
        it = pool.imap_unordered(_worker, [(opts, mapping, p, None, duplicates.get(p.table.name)) for p in parts])
        while True:
            try:
                r = it.next(timeout=0.2)
            except mp.TimeoutError:
                progress.drain(events)
                continue
            except StopIteration:
                break
            progress.drain(events)
            results.append(r)
            if r.get("error"):
                pool.terminate()
                break
    progress.drain(events)
    return results
