"""Validation of every record, independent of the transform that loaded it.

The expected target value is computed (expect.py) from the source value and the mapping's declared
type (never by calling mongo2pg.transform), and compared with what PostgreSQL returns as text. Five
layers: row counts (with rejects accounted by id), field-level match, referential integrity
(including junction completeness against the union of both sides' arrays), type conversion, and
schema. The tables are checked in worker processes (rows.py) while one connection runs the database's
own checks (database.py); report.py writes the result.
"""

from __future__ import annotations

import random
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..connect import run_on_connections
from ..issues import ErrorLogAccount
from ..mapping import Mapping, load_mapping
from ..migration.retry import StderrEvents, with_retries
from ..pooler import refuse_transaction_pooler
from ..source.readers import open_source
from ..workers import fork_pool
from . import since
from .database import database_jobs, junction_rows, merge_database
from .options import ValidateOptions
from .report import MAX_LISTED, Findings, build_report, new_lists, write_report
from .rows import TableCheck, check_table_task


def _check_tables(opts: ValidateOptions, mapping: Mapping, source, rng: random.Random, lists: dict[str, Any],
                  sides: dict[tuple[str, str], set[bytes]], alongside: Callable[[], None]) -> list[TableCheck]:
    """Every table's rows and fields, in parallel processes, while `alongside` runs in a thread of this
    one (started once the workers are forked: a fork must not copy a thread's connection mid-use);
    results merged in mapping order. The junction links the documents hold go into `sides`, by the side
    whose array holds them."""
    tasks = []
    for t in mapping.tables.values():
        sample_ids = None
        if opts.sample:
            ids = [str(d.get("_id")) for d in source.iter_all(t.collection)]
            sample_ids = set(rng.sample(ids, min(opts.sample, len(ids))))
        tasks.append((opts, mapping, t.name, sample_ids))
    workers = opts.worker_count()
    if workers > 1:
        # Biggest tables first keeps every worker busy to the end.
        order = sorted(range(len(tasks)), key=lambda i: -source.work_hint(mapping.tables[tasks[i][2]].collection))
        with fork_pool(min(workers, len(tasks))) as pool, ThreadPoolExecutor(1) as thread:
            beside = thread.submit(alongside)
            done = dict(zip(order, pool.imap(check_table_task, [tasks[i] for i in order]), strict=True))
            beside.result()
        results = [done[i] for i in range(len(tasks))]
    else:
        alongside()
        results = [check_table_task(task) for task in tasks]
    checks = []
    for check, part, junctions in results:
        checks.append(check)
        _merge_lists(lists, part)
        for key, links in junctions.items():
            sides[key] |= links
    return checks


def _merge_lists(lists: dict[str, Any], part: dict[str, Any]) -> None:
    for key, value in part.items():
        if key == "typeErrorCount":
            lists[key] += value
        else:
            lists[key].extend(value[: MAX_LISTED - len(lists[key])])


def validate(opts: ValidateOptions) -> dict[str, Any]:
    """Every record; or, with --since and a baseline of the capture running now, what changed after it."""
    started = time.monotonic()
    mapping = load_mapping(opts.mapping)
    source = open_source(opts.mongo_uri, opts.dump, opts.db)
    log = ErrorLogAccount(opts.error_log)
    lists: dict[str, Any] = new_lists()
    results: dict[str, list] = defaultdict(list)
    sides: dict[tuple[str, str], set[bytes]] = defaultdict(set)
    mode = f"sample of {opts.sample} per table (seed {opts.seed})" if opts.sample else "every row"
    baseline_note: dict[str, Any] | None = None

    def database_checks(jobs: list, workers: int) -> None:
        # Read-only and whole: after a lost connection, every job again (within --retry-seconds).
        got = with_retries(lambda: list(run_on_connections(opts.connect_read_only, jobs, workers)),
                           opts.retry_seconds, StderrEvents, "(database checks)", opts.pg_uri)
        for kind, payload in got:
            results[kind].append(payload)

    def with_read_only(work: Callable[[Any], Any]) -> Any:
        conn = opts.connect_read_only()
        try:
            return work(conn)
        finally:
            conn.close()

    try:
        refuse_transaction_pooler(opts.pg_uri)  # fail fast, with one clear line, before forking
        record = None
        if opts.since:
            record, why_not = with_read_only(lambda conn: since.usable_baseline(opts.since, conn))
            if record is None:
                print(f"validate: {why_not}: checking every record", file=sys.stderr, flush=True)
        if record is not None:
            # Read-only and whole: after a lost connection, every changed record again (within --retry-seconds).
            checks, linked, part = with_retries(
                lambda: with_read_only(lambda conn: since.check_since(conn, mapping, source, log, record)),
                opts.retry_seconds, StderrEvents, "(changed records)", opts.pg_uri)
            _merge_lists(lists, part)
            results["junction"] += linked
            database_checks(database_jobs(mapping), opts.worker_count())
            mode = f"changes since the full pass of {record['at']}"
            baseline_note = {"path": opts.since, "at": record["at"], "rowsCheckedThen": record["rowsChecked"]}
        else:
            position = with_read_only(since.capture_position) if opts.baseline else None
            # The database's own checks need no source: one connection runs them while the tables are checked.
            checks = _check_tables(opts, mapping, source, random.Random(opts.seed), lists, sides,
                                   alongside=lambda: database_checks(database_jobs(mapping), 1))
            database_checks([junction_rows(mapping, j, sides[(j.name, "left")] | sides[(j.name, "right")])
                             for j in mapping.junctions.values()], opts.worker_count())
            if position is not None:
                since.write_baseline(opts.baseline, position, mapping, checks, sides,
                                     {j.name: found for j, _, _, found in results["junction"]}, log)
        orphans, broken, junctions, db_type_errors, schema_diffs = merge_database(opts, mapping, results, lists)
    finally:
        source.close()
    seconds = time.monotonic() - started
    found = Findings(checks=checks, lists=lists, orphans=orphans, broken=broken, junctions=junctions,
                     db_type_errors=db_type_errors, schema_diffs=schema_diffs, seconds=seconds, log=log,
                     source_label=source.label)
    report = build_report(opts, mapping, found)
    report["mode"] = mode
    if baseline_note is not None:
        report["baseline"] = baseline_note
    write_report(Path(opts.report), report)
    return report
