"""`capture`, `reverse-sync`, `reverse-validate`: the lossless rollback's commands."""

from __future__ import annotations

from .common import need


def cmd_capture(args) -> int:
    from ..migration.retry import StderrEvents, with_retries
    from ..pooler import refuse_transaction_pooler

    need(args, "pg-uri")
    refuse_transaction_pooler(args.pg_uri)  # and a wrong URI or password: one line now, not retried
    return with_retries(lambda: _capture(args), args.retry_seconds, StderrEvents, "capture", args.pg_uri)


def _capture(args) -> int:
    from ..connect import pg_connect
    from ..mapping import load_mapping
    from ..reverse import capture

    conn = pg_connect(args.pg_uri, "mongo2pg-capture")
    try:
        if args.action == "install":
            n, created = capture.install(conn, load_mapping(args.mapping), tuple(args.reader) or ("pg_monitor",))
            print(f"capture: on {n} tables and junctions ({created} added now); every write is recorded in "
                  "mongo2pg.changes")
        elif args.action == "remove":
            capture.remove(conn)
            print("capture: triggers removed (mongo2pg.changes kept)")
        else:
            with conn.cursor() as cur:
                waiting = capture.waiting(cur)
            print("capture: not installed" if waiting is None else f"capture: {waiting} changes waiting")
    finally:
        conn.close()
    return 0


def cmd_reverse_sync(args) -> int:
    from ..reverse.sync import reverse_sync

    need(args, "pg-uri", "mongo-uri")

    def line(p: dict) -> None:
        print(f"reverse-sync: batch {p['batches']}: {p['changes']:,} changes applied (up to #{p['last_seq']}); "
              f"documents created {p['created']}, updated {p['updated']}, deleted {p['deleted']}, "
              f"link arrays {p['arrays']}", flush=True)

    t = reverse_sync(args.pg_uri, args.mongo_uri, args.db, args.mapping, args.batch, line, args.retry_seconds)
    print(f"reverse-sync: done: {t['changes']:,} changes in {t['batches']} batches, {t['seconds']} s; documents "
          f"created {t['created']}, updated {t['updated']}, deleted {t['deleted']}, link arrays {t['arrays']}; "
          "none waits")
    return 0


def cmd_reverse_validate(args) -> int:
    from ..reverse.check import reverse_validate

    need(args, "pg-uri", "mongo-uri")
    r = reverse_validate(args.pg_uri, args.mongo_uri, args.db, args.mapping, args.report, args.retry_seconds)
    print(f"reverse validation {r['status']}: {r['changes']:,} changes, {r['documents_compared']:,} documents and "
          f"link arrays compared" + "".join(f"\n  {x}" for x in r["reasons"]))
    for d in r["differences"][:10]:
        print(f"  {d['collection']} {d['_id']}: {d['difference']}")
    return 0 if r["status"] == "PASS" else 1
