"""The load: every entity table (or range of a big dump collection) in a worker process of its own,
batch by batch from its checkpoint, with the error-rate and free-disk guards after each batch."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg2

from ..connect import LOAD_SESSION, pg_connect
from ..errors import ConfigError, GuardTripped
from ..hostmem import available_fraction
from ..issues import REJECT, Issue
from ..mapping import Mapping, Table
from ..source.readers import ResumePoint, open_source, tune_gc_for_documents
from ..stages import Stages
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


def plan_parts(conn, opts: Options, tables: list[Table], counts: dict[str, int], work: dict[str, int]) -> list[Part]:
    """The parts to load, the most work first (`work`: the source's work_hint of each table, a dump file's
    bytes or a live collection's count; a range its share), so that the last parts left are short. A big collection of a dump
    splits into ordinal ranges, one per worker (a live source reads whole collections in _id order). The
    split is stored with the run's state the first time, so a resumed run uses the same ranges whatever
    its worker count."""
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
    return sorted(parts, key=lambda p: -(work[p.table.name] * p.total / counts[p.table.name] if p.total else 0))


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
    seen: dict[str, str | None] = {}  # the target's data directory, once read: what a lost target is asked about
    try:
        # The run connected before any part started (a wrong URI stopped it there): a part refused now is an
        # outage (a restart, a failover) to wait out within --retry-seconds, never a configuration error.
        return with_retries(lambda: _load_from_checkpoint(opts, part, transform, events, seen), opts.retry_seconds,
                            events, part.label, opts.pg_uri, lambda: seen.get("data_dir"))
    except psycopg2.errors.DiskFull as exc:
        raise GuardTripped(f"{part.table.name}: the target disk is full ({exc.pgerror.strip().splitlines()[0]}); "
                           "the last batch was rolled back, free space and rerun (it resumes)") from None
    except psycopg2.errors.ReadOnlySqlTransaction:
        raise ConfigError("the target database is read-only (hot standby or default_transaction_read_only): "
                          "point --pg-uri at the primary") from None


def _load_from_checkpoint(opts: Options, part: Part, transform: TableTransform, events,
                          seen: dict[str, str | None]) -> dict[str, Any]:
    table, total, label = part.table, part.total, part.label
    source = conn = None
    try:
        source = open_source(opts.mongo_uri, opts.dump, opts.db)
        conn = pg_connect(opts.pg_uri, "mongo2pg-load", settings=LOAD_SESSION)
        with conn.cursor() as cur:
            cp = read_checkpoint(cur, part.step)
        conn.rollback()
        if cp.done:
            return {"table": table.name, "skipped": True}
        data_dir = seen["data_dir"] = _data_directory(conn)
        events.put({"event": "start", "table": label, "total": total, "position": cp.position,
                    "loaded": cp.loaded, "rejected": cp.rejected})
        batch_started = time.monotonic()
        reasons: Counter[str] = Counter()
        warned = False
        stages = Stages()
        resume = ResumePoint(part.start + cp.position, cp.last_id, table.text_id)
        reading = time.perf_counter()
        for batch in source.batches(table.collection, resume, opts.batch_size, stop=part.stop,
                                    max_bytes=opts.batch_bytes):
            stages["load: read"] += time.perf_counter() - reading
            with stages.timed("load: decode and transform"):
                result = transform.convert_raw_batch(batch)
            issues = commit_batch(conn, table.name, transform.columns, result, cp, len(batch), result.last_id,
                                  batch_started, stages)
            del batch, result  # a batch's documents are the run's memory: free them before the next read
            batch_started = time.monotonic()
            events.put({"event": "batch", "table": label, "total": total, "position": cp.position,
                        "loaded": cp.loaded, "rejected": cp.rejected, "fixups": cp.fixups,
                        "issues": issues, "last_id": cp.last_id})
            reasons.update(i.reason for i in issues if i.severity == REJECT)
            rate = cp.rejected / cp.position if cp.position else 0.0
            if cp.position >= 100 and rate > opts.warn_error_rate and not warned:
                warned = True
                top = ", ".join(f"{r} {n}" for r, n in reasons.most_common(3)) or "earlier batches"
                events.put({"event": "warning", "table": label, "message": (
                    f"HIGH error rate: {label}: {cp.rejected} of {cp.position} records rejected ({rate:.1%} > "
                    f"{opts.warn_error_rate:.0%}); top reasons: {top}. It stops at {opts.max_error_rate:.0%}; "
                    f"inspect {opts.error_log} now")})
            if cp.position >= 100 and rate > opts.max_error_rate:
                raise GuardTripped(f"{label}: {cp.rejected} of {cp.position} records rejected "
                                   f"({rate:.1%}) exceeds --max-error-rate "
                                   f"{opts.max_error_rate:.1%}; checkpointed. Inspect {opts.error_log}, fix the "
                                   "data or the mapping, then rerun (it resumes) or raise the threshold")
            _check_disk(data_dir, opts.min_free_disk)
            _check_memory(opts.min_free_memory)
            reading = time.perf_counter()
        with conn.cursor() as cur:
            cp.done = True
            write_checkpoint(cur, cp)
            # The batches committed without waiting for their WAL flush (LOAD_SESSION); the part's last commit
            # waits for it, and so for every earlier one: a part reported done survives a crash of the target
            # that the run then rides out (a done part is never loaded again).
            cur.execute("SET LOCAL synchronous_commit = on")
        conn.commit()
        events.put({"event": "done", "table": label, "total": total, "position": cp.position,
                    "loaded": cp.loaded, "rejected": cp.rejected, "fixups": cp.fixups, "seconds": cp.seconds})
        return {"table": table.name, "unknown_fields": dict(transform.unknown_fields),
                "duplicate_links": transform.duplicate_links, "stages": dict(stages)}
    finally:
        if conn is not None:
            conn.close()
        if source is not None:
            source.close()


def _data_directory(conn) -> str | None:
    """The target's data directory, when this role may read it (superuser or pg_read_all_settings). Asked
    first: a refused read is an ERROR in the server's log, once per table part, which monitoring counts."""
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT CASE WHEN pg_has_role(current_user, 'pg_read_all_settings', 'USAGE') "
                        "THEN current_setting('data_directory') END")
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


def _check_memory(min_free: float) -> None:
    """Stop cleanly before this host runs out of memory (the OOM killer would not checkpoint)."""
    free = available_fraction()
    if free < min_free:
        raise GuardTripped(f"available memory on the migration host is {free:.1%} (< {min_free:.0%}); checkpointed: "
                           "lower --batch-size / --batch-bytes or --workers (or free memory), then rerun (it resumes)")


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
        last_progress = time.monotonic()
        reported = False
        while True:
            try:
                r = it.next(timeout=0.2)
            except mp.TimeoutError:
                if progress.drain(events):
                    last_progress, reported = time.monotonic(), False
                elif time.monotonic() - last_progress > opts.hang_seconds and not reported:
                    reported = True
                    _report_hang(opts, pool, progress, time.monotonic() - last_progress)
                continue
            except StopIteration:
                break
            progress.drain(events)
            last_progress = time.monotonic()
            results.append(r)
            if r.get("error"):
                pool.terminate()
                break
    progress.drain(events)
    return results


def _report_hang(opts: Options, pool, progress: Progress, idle: float) -> None:
    """No worker reported for `idle` seconds: say so with what to check, and stop when the policy says so
    (each worker's last batch is rolled back; the rerun resumes at its checkpoint)."""
    workers = [(p.pid, _process_state(p.pid)) for p in getattr(pool, "_pool", [])]
    message = (f"HUNG: no progress for {idle:.0f}s (--hang-seconds {opts.hang_seconds:g}). Check the worker processes "
               f"({', '.join(f'pid {pid} {state}' for pid, state in workers) or 'none left'}), PostgreSQL's "
               "connections (pg_stat_activity: waiting or idle in transaction, locks), the target's free disk, and "
               f"this host's memory ({available_fraction():.0%} available)")
    progress.handle({"event": "warning", "table": "(load)", "message": message})
    if opts.on_hang == "stop":
        for pid, _ in workers:  # a stopped (SIGSTOP) process ignores SIGTERM until continued: kill it
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        pool.terminate()
        raise GuardTripped(message + "; stopped (on_hang: stop), checkpointed: fix the cause, then rerun (it resumes)")


def _process_state(pid: int) -> str:
    """A process's state as ps shows it: running, sleeping, disk wait, stopped, ..."""
    names = {"R": "running", "S": "sleeping", "D": "in disk wait", "T": "stopped", "t": "stopped (traced)",
             "Z": "defunct"}
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "gone"
    return names.get(state, state)
