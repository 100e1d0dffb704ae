"""`mongo2pg online`: change capture opened before the bulk read (online migration, its first part)."""

from __future__ import annotations

import json
import sys
import time

from .common import need


def cmd_online(args) -> int:
    from ..online import capture

    need(args, "pg-uri")
    if args.action == "status":
        print(json.dumps(capture.status(args.pg_uri), indent=1))
        return 0
    if args.action == "apply":
        return _apply(args)
    if args.action == "reset":
        need(args, "collection")
        capture.reset(args.pg_uri, args.collection)
        print(f"online: {args.collection} forgotten; its stream opens from now at the next capture")
        return 0
    return _capture(args)


def _capture(args) -> int:
    from ..connect import mongo_client
    from ..mapping import load_mapping
    from ..online.capture import Capture
    from ..pooler import refuse_transaction_pooler

    need(args, "mongo-uri")
    refuse_transaction_pooler(args.pg_uri)
    collections = sorted({t.collection for t in load_mapping(args.mapping).tables.values()})
    cap = Capture(args.pg_uri, mongo_client(args.mongo_uri)[args.db], collections, batch=args.batch)
    how = cap.open()
    resumed = sum(1 for h in how.values() if h != "from now")
    print(f"online: streams open on {len(how)} collections ({resumed} resumed from their stored tokens); "
          "the bulk read may start now", flush=True)
    start = idle_since = time.monotonic()
    seen = 0

    def until() -> bool:
        nonlocal seen, idle_since
        if cap.captured_events != seen:
            seen, idle_since = cap.captured_events, time.monotonic()
        if args.seconds and time.monotonic() - start >= args.seconds:
            return True
        return bool(args.until_idle) and time.monotonic() - idle_since >= args.until_idle

    try:
        n = cap.run(until, progress=lambda line: print(line, file=sys.stderr, flush=True),
                    retry_seconds=args.retry_seconds)
    finally:
        cap.close()
    print(f"online: {n} events captured this run")
    return 0


def _apply(args) -> int:
    from ..connect import pg_connect
    from ..mapping import load_mapping
    from ..online.apply import apply_waiting, waiting
    from ..pooler import refuse_transaction_pooler
    from ..source.readers import open_source

    need(args, "mongo-uri")
    refuse_transaction_pooler(args.pg_uri)
    conn = pg_connect(args.pg_uri, "mongo2pg online apply")
    source = open_source(args.mongo_uri, None, args.db)
    try:
        before = waiting(conn)
        start = time.monotonic()
        done = apply_waiting(conn, source, load_mapping(args.mapping), batch=args.batch, error_log=args.error_log,
                             progress=lambda line: print(line, file=sys.stderr, flush=True))
        seconds = time.monotonic() - start
    finally:
        source.close()
        conn.close()
    rate = before / seconds if seconds > 0 else 0.0
    print(f"online apply: {before} changed documents in {seconds:.1f} s ({rate:.0f}/s): {done.loaded} loaded, "
          f"{done.removed} removed, {len(done.rejected)} rejected (reasons in the error log)")
    return 0
