"""`mongo2pg online`: the online migration's commands: capture and apply (each alone), run (both in one loop,
the service), start/stop (that service detached, with a pid file), status, cutover, reset."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from .common import need


def cmd_online(args) -> int:
    from ..online import capture

    if args.action == "stop":
        return _stop(args)
    if args.action == "check":
        return _check(args)
    need(args, "pg-uri")
    if args.action == "status":
        figures = capture.status(args.pg_uri)
        if args.status_file:
            from ..online.service import read_status
            figures["service"] = read_status(args.status_file)
        print(json.dumps(figures, indent=1))
        return 0
    if args.action == "apply":
        return _apply(args)
    if args.action == "run":
        return _run(args)
    if args.action == "start":
        return _start(args)
    if args.action == "cutover":
        return _cutover(args)
    if args.action == "reset":
        need(args, "collection")
        capture.reset(args.pg_uri, args.collection)
        print(f"online: {args.collection} forgotten; its stream opens from now at the next capture")
        return 0
    return _capture(args)


def _capture(args) -> int:
    from ..connect import mongo_client
    from ..mapping import load_mapping
    from ..online.capture import Capture, mapped_collections
    from ..pooler import refuse_transaction_pooler

    need(args, "mongo-uri")
    refuse_transaction_pooler(args.pg_uri)
    cap = Capture(args.pg_uri, mongo_client(args.mongo_uri)[args.db], mapped_collections(load_mapping(args.mapping)),
                  batch=args.batch)
    how = cap.open()
    resumed = sum(1 for h in how.values() if h != "from now")
    print(f"online: streams open on {len(how)} collections ({resumed} resumed from their stored tokens); "
          "the bulk read may start now", flush=True)
    start = time.monotonic()

    def until() -> bool:
        if args.seconds and time.monotonic() - start >= args.seconds:
            return True
        return bool(args.until_idle) and cap.idle_seconds() >= args.until_idle

    try:
        n = cap.run(until, progress=lambda line: print(line, file=sys.stderr, flush=True),
                    retry_seconds=args.retry_seconds)
    finally:
        cap.close()
    print(f"online: {n} events captured this run")
    return 0


def _apply(args) -> int:
    from ..connect import pg_connect
    from ..errors import ConfigError
    from ..online.apply import apply_waiting, bulk_complete, waiting

    source, mapping = _source_and_mapping(args)
    conn = pg_connect(args.pg_uri, "mongo2pg online apply")
    try:
        if not bulk_complete(conn):
            raise ConfigError("the bulk has not completed (mongo2pg migrate --online): the changes wait for it")
        before = waiting(conn)
        start = time.monotonic()
        done = apply_waiting(conn, source, mapping, batch=args.batch, error_log=args.error_log,
                             progress=lambda line: print(line, file=sys.stderr, flush=True))
        seconds = time.monotonic() - start
    finally:
        source.close()
        conn.close()
    rate = before / seconds if seconds > 0 else 0.0
    print(f"online apply: {before} changed documents in {seconds:.1f} s ({rate:.0f}/s): {done.loaded} loaded, "
          f"{done.removed} removed, {len(done.rejected)} rejected (reasons in the error log)")
    return 0


def _source_and_mapping(args):
    from ..mapping import load_mapping
    from ..pooler import refuse_transaction_pooler
    from ..source.readers import open_source

    need(args, "mongo-uri")
    refuse_transaction_pooler(args.pg_uri)
    return open_source(args.mongo_uri, None, args.db), load_mapping(args.mapping)


def _run(args) -> int:
    from ..online.service import Service

    source, mapping = _source_and_mapping(args)
    try:
        return Service(args.pg_uri, source, mapping, args.status_file, args.error_log, batch=min(args.batch, 500),
                       history_file=args.history_file,
                       alarm_seconds=args.alarm_minutes * 60, retry_seconds=args.retry_seconds).run()
    finally:
        source.close()


def _start(args) -> int:
    from ..online import capture
    from ..online.service import start

    need(args, "mongo-uri", "pid-file", "log-file", "status-file")
    if args.fresh:  # a new online migration: the last one's service, tokens and changes go
        from ..online.service import stop

        pid = stop(args.pid_file)
        if pid:
            print(f"online: the running service stopped (pid {pid}) for the fresh start")
        capture.reset(args.pg_uri, None)
        print("online: stored tokens and changes forgotten (--fresh): the streams open from now")
    # The connection strings go to the service through its environment, never its command line (ps shows that).
    os.environ.update(MONGO2PG_PG_URI=args.pg_uri, MONGO2PG_MONGO_URI=args.mongo_uri)
    argv = ["--db", args.db, "--mapping", args.mapping, "--status-file", str(Path(args.status_file).resolve()),
            "--alarm-minutes", str(args.alarm_minutes), "--retry-seconds", str(args.retry_seconds)]
    for flag, path in (("--error-log", args.error_log), ("--history-file", args.history_file)):
        if path:
            argv += [flag, str(Path(path).resolve())]
    pid = start(argv, args.pid_file, args.log_file, args.status_file)
    print(f"online: service running (pid {pid}); its figures: {args.status_file}, its log: {args.log_file}")
    return 0


def _stop(args) -> int:
    from ..online.service import stop

    need(args, "pid-file")
    pid = stop(args.pid_file)
    print(f"online: service stopped (pid {pid})" if pid else "online: no service was running")
    return 0


def _cutover(args) -> int:
    from ..files import write_private
    from ..online.cutover import cutover

    source, mapping = _source_and_mapping(args)
    try:
        done = cutover(args.pg_uri, source, mapping, args.error_log, idle_seconds=args.idle_seconds,
                       progress=lambda line: print(line, file=sys.stderr, flush=True))
    finally:
        source.close()
    report = done.to_json()
    if args.report:
        write_private(args.report, json.dumps(report, indent=1) + "\n")
    parts = ", ".join(f"{k} {v:.1f} s" for k, v in report["parts"].items())
    print(f"online cutover: {report['status']} in {report['seconds']:.1f} s ({parts}); {report['drained_events']} "
          f"events drained, {report['loaded']} loaded, {report['removed']} removed, {report['rejected']} rejected, "
          f"{report['duplicates_rejected']} duplicates of a unique key rejected")
    for t in report["unreconciled"]:
        print(f"  NOT RECONCILED {t['table']}: source {t['source']} != loaded {t['loaded']} + rejected {t['rejected']}")
    return 0 if report["status"] == "complete" else 1


def _check(args) -> int:
    """The source's readiness (replica set, oplog window) as JSON; NO-GO reasons listed, exit 0 either way."""
    from ..connect import mongo_client
    from ..online.oplog import source_readiness

    need(args, "mongo-uri")
    print(json.dumps(source_readiness(mongo_client(args.mongo_uri), args.bulk_seconds, args.min_oplog_hours), indent=1))
    return 0
