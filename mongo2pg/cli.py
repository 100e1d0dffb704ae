"""`mongo2pg`: the engine's command line. `--help` on any command prints help and does nothing else.

Exit codes: 0 success, 1 a data gate failed (unreconciled counts, validation FAIL, a guard stopped
the run, duplicates under `on_duplicate: fail`, an index or foreign key PostgreSQL refused) or an
unexpected error (one line; MONGO2PG_DEBUG=1 shows the traceback), 2 a configuration error (bad
option, mapping, URI, server).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from . import __version__, console
from .errors import ConfigError, Mongo2PgError
from .redact import redact_text


def _env_default(name: str) -> str | None:
    return os.environ.get(name) or None


def _source_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    g = p.add_argument_group("source (one of)")
    g.add_argument("--mongo-uri", default=_env_default("MONGO2PG_MONGO_URI"),
                   help="live MongoDB URI (env MONGO2PG_MONGO_URI); tls=true&tlsCAFile=... for TLS")
    g.add_argument("--dump", help="folder `mongodump --out` wrote (holding <db>/), or the <db> folder itself")
    p.add_argument("--db", default="nextcrm", help="database name in MongoDB or inside the dump (default: nextcrm)")


def _pg_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pg-uri", default=_env_default("MONGO2PG_PG_URI"),
                   help="PostgreSQL URI (env MONGO2PG_PG_URI); sslmode=verify-full&sslrootcert=... for TLS")


def _mapping_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mapping", default="nextcrm", help="built-in mapping name or a YAML file (default: nextcrm)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mongo2pg", description="MongoDB -> PostgreSQL migration engine "
                                "(batched COPY, exactly-once checkpoints, full validation).")
    p.add_argument("--version", action="version", version=f"mongo2pg {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    m = sub.add_parser("migrate", help="migrate a MongoDB database or dump into PostgreSQL (resumes by default)")
    _source_args(m)
    _pg_arg(m)
    _mapping_arg(m)
    m.add_argument("--batch-size", type=int, default=5000,
                   help="documents per COPY transaction, at most (default: %(default)s)")
    m.add_argument("--batch-bytes", type=int, default=16 << 20, metavar="BYTES",
                   help="BSON bytes per COPY transaction, at most; a batch holds one document at least "
                        "(default: %(default)s = 16 MiB)")
    m.add_argument("--workers", type=int, default=0, help="parallel table loaders (default: sized to the machine)")
    m.add_argument("--split-documents", type=int, default=100_000, metavar="N",
                   help="with --dump: a collection of at least 2N documents loads as ranges of at least N, one per "
                        "worker, side by side (default: %(default)s; 0: never)")
    m.add_argument("--error-log", default="migration-errors.log", help="JSON-lines reject log (default: %(default)s)")
    m.add_argument("--checkpoint-file", default="migration-checkpoint.json",
                   help="human-readable mirror of the checkpoint (default: %(default)s)")
    m.add_argument("--progress-file", help="machine-readable progress, rewritten atomically each batch")
    m.add_argument("--progress-sheet", help="the runbook's progress sheet as CSV (time, phase, table, records, "
                   "%% complete, speed, errors), appended while it runs")
    m.add_argument("--progress-sheet-seconds", type=float, default=10.0,
                   help="seconds between a loading table's rows in --progress-sheet (default: %(default)s)")
    m.add_argument("--summary-file", help="write the final summary as JSON here")
    m.add_argument("--fresh", action="store_true", help="start over: empty the target tables and the checkpoint")
    m.add_argument("--warn-error-rate", type=float, default=0.01,
                   help="a HIGH line, with the top reasons, when a table rejects more (default: %(default)s)")
    m.add_argument("--max-error-rate", type=float, default=0.05, help="stop when a table rejects more (default: 0.05)")
    m.add_argument("--min-free-memory", type=float, default=0.10,
                   help="stop (checkpointed) when this host has less memory available (default: %(default)s)")
    m.add_argument("--hang-seconds", type=float, default=600.0,
                   help="no progress in the load this long: reported as hung (default: %(default)s)")
    m.add_argument("--on-hang", choices=["stop", "report"], default="stop",
                   help="a hung load is stopped (checkpointed) or only reported (default: %(default)s)")
    m.add_argument("--retry-seconds", type=float, default=300.0,
                   help="keep retrying lost connections this long (default: %(default)s)")
    m.add_argument("--min-free-disk", type=float, default=0.10,
                   help="stop (checkpointed) when the target's disk has less free (default: %(default)s)")
    m.add_argument("--no-finalize", action="store_true", help="leave indexes and foreign keys for `schema finalize`")
    m.add_argument("--quiet", action="store_true", help="no progress output, only the summary")

    pl = sub.add_parser("plan", help="show what migrate would do (tables in order, source counts); writes nothing")
    _source_args(pl)
    _mapping_arg(pl)

    st = sub.add_parser("status", help="show the checkpoint state stored in the target database")
    _pg_arg(st)

    sc = sub.add_parser("schema", help="create or check the target schema")
    sc.add_argument("action", choices=["apply", "finalize", "diff", "show", "prisma"],
                    help="apply: enums, tables, primary keys; finalize: indexes and foreign keys; "
                         "diff: compare the live schema with the mapping; show: print the expected schema; "
                         "prisma: write the PostgreSQL-era schema.prisma of the mapping")
    _pg_arg(sc)
    _mapping_arg(sc)
    sc.add_argument("--out", help="with prisma: write the schema.prisma here (default: print it)")

    mp = sub.add_parser("mapping", help="write a mapping for another application")
    mp.add_argument("action", choices=["from-prisma"],
                    help="from-prisma: from the application's MongoDB-era schema.prisma (read by Prisma's parser)")
    mp.add_argument("schema", help="the MongoDB-era schema.prisma")
    mp.add_argument("--out", help="write the mapping YAML here (default: print it)")
    mp.add_argument("--naming", choices=["prisma", "nextcrm"], default="prisma",
                    help="names of junction tables, their columns and indexes: Prisma's conventions (default) "
                         "or NextCRM's choices")
    mp.add_argument("--name", help="the mapping's name (default: the schema file's folder or stem)")
    sc.add_argument("--reference", help="with diff: compare against this schema JSON instead of the mapping")
    sc.add_argument("--stage", choices=["final", "apply"], default="final",
                    help="with diff: 'apply' checks enums, tables, columns and keys only (before the load "
                         "adds indexes and foreign keys); default: final")

    i = sub.add_parser("id", help="convert an ObjectId to its UUID or back")
    i.add_argument("value", help="24-hex ObjectId or UUID")

    sd = sub.add_parser("sample-data", help="generate NextCRM-shaped data (deterministic)")
    sd.add_argument("--scale", type=float, default=0.01, help="1 = the runbook's production volume (1,254,390 docs)")
    sd.add_argument("--seed", type=int, default=1)
    sd.add_argument("--db", default="nextcrm")
    sd.add_argument("--dirty-rate", type=float, default=0.0, help="fraction of documents given a realistic defect")
    sd.add_argument("--profile", choices=["default", "runbook-bytes"], default="default",
                    help="documents' weight: default (~340 B of BSON each) or runbook-bytes (the runbook's ~9.8 KB: "
                         "long texts, and a tail of 1-5 MB invoices and documents, some consecutive)")
    sd.add_argument("--out-dump", help="write a mongodump-format folder here (DIR/<db>/...)")
    sd.add_argument("--gzip", action="store_true", help="gzip the dump files, like mongodump --gzip")
    sd.add_argument("--mongo-uri", help="insert into this live MongoDB instead (drops the collections first)")
    sd.add_argument("--manifest", help="with --mongo-uri: where to write the manifest")

    v = sub.add_parser("validate", help="validate the target against the source, every row")
    _source_args(v)
    _pg_arg(v)
    _mapping_arg(v)
    v.add_argument("--report", default="migration-validation-report.json", help="JSON report path")
    v.add_argument("--error-log", default="migration-errors.log", help="the migration's reject log")
    v.add_argument("--sample", type=int, default=0, help="check a seeded random sample of N rows per table")
    v.add_argument("--seed", type=int, default=1)
    v.add_argument("--min-match", type=float, default=99.0, help="minimum field match percentage (default: 99)")
    v.add_argument("--lenient", action="store_true", help="allow mismatches up to --min-match (default: strict)")
    v.add_argument("--reference-schema", help="schema JSON the target must equal (default: from the mapping)")
    v.add_argument("--workers", type=int, default=0, help="tables checked in parallel (default: one per CPU, max 4)")
    d = sub.add_parser("dump", help="back up a MongoDB database in mongodump's format (streams)")
    d.add_argument("--mongo-uri", default=_env_default("MONGO2PG_MONGO_URI"), help="MongoDB URI (env MONGO2PG_MONGO_URI)")
    d.add_argument("--db", default="nextcrm", help="database to dump (default: nextcrm)")
    d.add_argument("--out", required=True, help="output folder; the dump goes to OUT/<db>/ (mode 0700)")
    d.add_argument("--gzip", action="store_true", help="compress .bson and .metadata.json files, as mongodump --gzip")

    r = sub.add_parser("restore", help="restore a mongodump-format folder into MongoDB (documents and indexes)")
    r.add_argument("--dump", required=True, help="folder `mongodump --out` wrote (holding <db>/), or the <db> folder")
    r.add_argument("--mongo-uri", default=_env_default("MONGO2PG_MONGO_URI"), help="MongoDB URI (env MONGO2PG_MONGO_URI)")
    r.add_argument("--db", default="nextcrm", help="database folder inside the dump (default: nextcrm)")
    r.add_argument("--target-db", help="database to restore into (default: the same name)")
    r.add_argument("--drop", action="store_true", help="drop each target collection before restoring it")
    mo = sub.add_parser("monitor", help="post-migration monitoring: a snapshot against thresholds, or a window summary")
    mo.add_argument("action", choices=["snapshot", "summary"])
    _pg_arg(mo)
    mo.add_argument("--health-url", help="the application's health endpoint")
    mo.add_argument("--history", default="monitoring-history.jsonl", help="JSON-lines history (default: %(default)s)")
    mo.add_argument("--disk-path", help="file system whose usage counts (default: PostgreSQL's data directory, "
                    "which must then be on this host)")
    mo.add_argument("--host-name", help="name of the measured host in the snapshot (default: this host's name)")
    mo.add_argument("--app-url", help="the application's base URL, for --endpoints")
    mo.add_argument("--endpoints", metavar="FILE",
                    help="JSON list of key endpoints to time: [{name, path, max_ms, capture}] (as the smoke tests)")
    mo.add_argument("--pg-log", help="PostgreSQL's log file to count errors in (default: the server's current one)")
    mo.add_argument("--log-minutes", type=float, default=5, help="window of the log judged (default: %(default)s)")
    mo.add_argument("--threshold", action="append", default=[], metavar="KEY=VALUE",
                    help="override a threshold, e.g. health_ms=300 (repeatable)")
    ca = sub.add_parser("capture", help="change capture from go-live, for the lossless rollback: install, remove, status")
    ca.add_argument("action", choices=["install", "remove", "status"])
    _pg_arg(ca)
    _mapping_arg(ca)
    ca.add_argument("--reader", action="append", default=[], metavar="ROLE",
                    help="a role that may count the waiting changes (default: pg_monitor)")
    for name, text in (("reverse-sync", "apply the captured changes to MongoDB, until none waits (rollback)"),
                       ("reverse-validate", "MongoDB against PostgreSQL for every captured change: PASS or FAIL")):
        rv = sub.add_parser(name, help=text)
        _pg_arg(rv)
        rv.add_argument("--mongo-uri", default=_env_default("MONGO2PG_MONGO_URI"),
                        help="MongoDB URI (env MONGO2PG_MONGO_URI)")
        rv.add_argument("--db", default="nextcrm", help="MongoDB database (default: nextcrm)")
        _mapping_arg(rv)
        if name == "reverse-sync":
            rv.add_argument("--batch", type=int, default=1000, help="changes per batch (default: %(default)s)")
        else:
            rv.add_argument("--report", help="write the result as JSON here (0600)")
    es = sub.add_parser("estimate", help="the duration estimate: staging's phases x size ratio x 1.5, against the window")
    es.add_argument("--documents", type=int, required=True, help="this run's source documents")
    es.add_argument("--bytes", type=int, required=True, help="this run's source BSON bytes")
    es.add_argument("--staging", help="a copy of the staging run's artifacts folder (timeline.log, ...)")
    es.add_argument("--window-minutes", type=float, help="the maintenance window declared for this run")
    rp = sub.add_parser("report", help="write the final report (Markdown and self-contained HTML) from the artifacts")
    rp.add_argument("--artifacts", required=True, help="the folder the phases wrote their artifacts to")
    return p


def _need(args, *names: str) -> None:
    for n in names:
        if not getattr(args, n.replace("-", "_"), None):
            raise ConfigError(f"--{n} is required (or set MONGO2PG_{n.upper().replace('-', '_')})")


def cmd_migrate(args) -> int:
    from .files import write_private
    from .migration import Options, run

    _need(args, "pg-uri")
    opts = Options.from_values({**vars(args), "finalize": not args.no_finalize})
    summary = run(opts, render=None if args.quiet else console.ConsoleProgress())
    console.print_summary(summary)
    if args.summary_file:
        write_private(args.summary_file, json.dumps(summary.to_json(), indent=1))
    return 0 if summary.status == "complete" else 1


def cmd_plan(args) -> int:
    from .migration import Options, plan

    print(json.dumps(plan(Options(pg_uri="", mongo_uri=args.mongo_uri, dump=args.dump, db=args.db,
                                  mapping=args.mapping)), indent=1))
    return 0


def cmd_status(args) -> int:
    from .migration import status

    _need(args, "pg-uri")
    print(json.dumps(status(args.pg_uri), indent=1, default=str))
    return 0


def cmd_schema(args) -> int:
    from . import schema
    from .connect import pg_connect
    from .mapping import load_mapping

    mapping = load_mapping(args.mapping)
    if args.action == "show":
        print(json.dumps(schema.expected_schema(mapping), indent=1))
        return 0
    if args.action == "prisma":
        from .prisma.to_prisma import schema_prisma

        _write_or_print(args.out, schema_prisma(mapping), f"schema prisma: {len(mapping.tables)} models and "
                        f"{len(mapping.junctions)} junction models")
        return 0
    _need(args, "pg-uri")
    conn = pg_connect(args.pg_uri)
    try:
        if args.action == "apply":
            from .migration.state import create_state

            n = schema.apply(conn, mapping)
            create_state(conn, mapping)  # the migration's own schema, so that the same user owns both
            print(f"schema apply: {len(mapping.tables)} tables, {len(mapping.junctions)} junctions, "
                  f"{len(mapping.enums)} enums ensured ({n} statements, each IF NOT EXISTS)")
        elif args.action == "finalize":
            n = schema.finalize(conn, mapping, progress=lambda name: print(f"  created {name}", flush=True))
            print(f"schema finalize: {n} indexes/foreign keys created")
        else:
            expected = json.load(open(args.reference)) if args.reference else schema.expected_schema(mapping)
            diffs = schema.diff_schemas(expected, schema.describe(conn), stage=args.stage)
            for d in diffs:
                print(d)
            print("schema matches" if not diffs else f"{len(diffs)} differences")
            return 0 if not diffs else 1
    finally:
        conn.close()
    return 0


def _write_or_print(out: str | None, text: str, what: str) -> None:
    if out is None:
        sys.stdout.write(text)
        return
    Path(out).write_text(text, encoding="utf-8")
    print(f"{what} -> {out}")


def cmd_mapping(args) -> int:
    from .mapping import parse_mapping
    from .prisma.dmmf import read_dmmf
    from .prisma.from_prisma import mapping_from_dmmf, mapping_yaml
    from .prisma.presets import PRESETS

    path = Path(args.schema)
    name = args.name or (path.resolve().parent.name if path.stem == "schema" else path.stem)
    mapping = mapping_from_dmmf(read_dmmf(args.schema), PRESETS[args.naming], name=name.replace("-", "_"))
    text = mapping_yaml(mapping, f"{name}: mapping written by `mongo2pg mapping from-prisma {Path(args.schema).name} "
                        f"--naming {args.naming}`.\nReview it (policies: on_dangling, fill) before migrating.")
    parsed = parse_mapping(text, args.out or "<from-prisma>")  # what the engine will read: it must load
    _write_or_print(args.out, text, f"mapping from-prisma: {len(parsed.tables)} tables, {len(parsed.junctions)} "
                    f"junctions, {len(parsed.foreign_keys())} foreign keys, {len(parsed.indexes())} indexes")
    return 0


def cmd_id(args) -> int:
    from .ids import IdFormatError, convert_any

    try:
        kind, other = convert_any(args.value)
    except IdFormatError as exc:
        raise ConfigError(str(exc)) from None
    print(f"{'ObjectId' if kind == 'objectid' else 'UUID'} {args.value.strip()} -> "
          f"{'UUID' if kind == 'objectid' else 'ObjectId'} {other}")
    return 0


def cmd_sample_data(args) -> int:
    from . import sample_data

    if bool(args.out_dump) == bool(args.mongo_uri):
        raise ConfigError("give exactly one output: --out-dump DIR or --mongo-uri URI")
    started = time.monotonic()

    def progress(coll: str, n: int) -> None:
        print(f"  {coll:<32} {n:>9,} documents", file=sys.stderr, flush=True)

    if args.out_dump:
        manifest = sample_data.write_dump(args.out_dump, db=args.db, seed=args.seed, scale=args.scale,
                                          dirty_rate=args.dirty_rate, gzip_files=args.gzip, progress=progress,
                                          profile=args.profile)
        where = f"{args.out_dump}/{args.db} (manifest: {args.out_dump}/sample-data-manifest.json)"
    else:
        from .connect import mongo_client

        client = mongo_client(args.mongo_uri)
        manifest = sample_data.write_live(client, db=args.db, seed=args.seed, scale=args.scale,
                                          dirty_rate=args.dirty_rate, progress=progress, manifest_path=args.manifest,
                                          profile=args.profile)
        from .redact import redact_uri

        where = f"{redact_uri(args.mongo_uri)} db={args.db}"
    m = manifest.to_json()
    print(f"sample-data: {m['total']:,} documents in {len(m['counts'])} collections -> {where} "
          f"({time.monotonic() - started:.1f}s; {m['dirty_documents']:,} dirty)")
    return 0


def cmd_validate(args) -> int:
    from .validation import ValidateOptions, markdown_summary, validate

    _need(args, "pg-uri")
    report = validate(ValidateOptions.from_values({**vars(args), "strict": not args.lenient}))

    print("\n".join(markdown_summary(report).splitlines()[:9]))
    print(f"Report: {args.report} (and {args.report.rsplit('.', 1)[0]}.md)")
    return 0 if report["overallStatus"] == "PASS" else 1


def _transfer_progress(verb: str):
    last = [0.0]

    def progress(name: str, n: int, total: int) -> None:
        now = time.monotonic()
        # Big collections only: a line at most every 2 s and when one finishes.
        if total >= 10_000 and (n == total or now - last[0] >= 2.0):
            last[0] = now
            print(f"  {verb} {name:<32} {n:>10,}/{total:,}", file=sys.stderr, flush=True)
    return progress


def cmd_dump(args) -> int:
    from .backup import dump_database, tree_size
    from .redact import redact_uri

    _need(args, "mongo-uri")
    started = time.monotonic()
    result = dump_database(args.mongo_uri, args.db, args.out, gzip_files=args.gzip,
                           progress=_transfer_progress("dumped"))
    counts = result.counts()
    print(f"dump: {sum(counts.values()):,} documents in {len(counts)} collections from {redact_uri(args.mongo_uri)} "
          f"db={args.db} -> {args.out}/{args.db} ({tree_size(os.path.join(args.out, args.db)):,} bytes, "
          f"{time.monotonic() - started:.1f}s)")
    return 0


def cmd_restore(args) -> int:
    from .backup import restore_database

    _need(args, "mongo-uri")
    started = time.monotonic()
    result = restore_database(args.dump, args.mongo_uri, db=args.db, target_db=args.target_db, drop=args.drop,
                              progress=_transfer_progress("restored"))
    counts = result.counts()
    print(f"restore: {sum(counts.values()):,} documents in {len(counts)} collections -> db={result.db} "
          f"({sum(c.indexes for c in result.collections)} indexes, {time.monotonic() - started:.1f}s)")
    return 0


def cmd_monitor(args) -> int:
    from . import monitor

    if args.action == "summary":
        result = monitor.summarize(monitor.read_history(args.history))
        print(json.dumps(result, indent=1))
        return 0 if result["success"] else 1
    _need(args, "pg-uri")
    thresholds = {}
    for item in args.threshold:
        key, _, value = item.partition("=")
        if key not in monitor.THRESHOLDS or not value:
            raise ConfigError(f"--threshold {item!r}: use KEY=VALUE with KEY one of {', '.join(monitor.THRESHOLDS)}")
        thresholds[key] = float(value)
    endpoints = None
    if args.endpoints:
        if not args.app_url:
            raise ConfigError("--endpoints needs --app-url (the base URL the paths are relative to)")
        try:
            endpoints = json.loads(open(args.endpoints).read())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"--endpoints {args.endpoints}: {exc}") from None
    snap = monitor.snapshot(args.pg_uri, args.health_url, args.disk_path, host_name=args.host_name,
                            app_url=args.app_url, endpoints=endpoints, pg_log=args.pg_log, log_minutes=args.log_minutes)
    breaches = monitor.evaluate(snap, thresholds)
    monitor.append_history(args.history, snap, breaches)
    db, host = snap["database"], snap["host"]
    health = snap.get("health")
    errors = db["log_errors"]
    print(f"{snap['taken_at']} {host['name']}: health {health['status'] if health else '-'} "
          f"{health['ms'] if health else '-'} ms; "
          f"active {db['active_queries']}, longest {db['longest_query_seconds']}s, waiting {db['waiting_queries']}, "
          f"connections {db['connections']}/{db['max_connections']}; "
          f"log errors/min {errors['per_minute'] if errors else '-'}; changes waiting "
          f"{db['changes_waiting'] if db['changes_waiting'] is not None else '-'}; cpu {host['cpu_percent']}%, "
          f"memory {host['memory_percent']}%, disk {host['disk_percent']}% of {host['disk_path']}")
    for e in snap.get("endpoints") or []:
        print(f"  endpoint {e['name']}: {e['status']} {e['ms'] if e['ms'] is not None else '-'} ms "
              f"(target {e.get('max_ms') or '-'} ms)")
    for b in breaches:
        print(f"BREACH: {b}")
    return 1 if breaches else 0


def cmd_capture(args) -> int:
    from . import capture
    from .connect import pg_connect
    from .mapping import load_mapping

    _need(args, "pg-uri")
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
    from .reverse.sync import reverse_sync

    _need(args, "pg-uri", "mongo-uri")

    def line(p: dict) -> None:
        print(f"reverse-sync: batch {p['batches']}: {p['changes']:,} changes applied (up to #{p['last_seq']}); "
              f"documents created {p['created']}, updated {p['updated']}, deleted {p['deleted']}, "
              f"link arrays {p['arrays']}", flush=True)

    t = reverse_sync(args.pg_uri, args.mongo_uri, args.db, args.mapping, args.batch, line)
    print(f"reverse-sync: done: {t['changes']:,} changes in {t['batches']} batches, {t['seconds']} s; documents "
          f"created {t['created']}, updated {t['updated']}, deleted {t['deleted']}, link arrays {t['arrays']}; "
          "none waits")
    return 0


def cmd_reverse_validate(args) -> int:
    from .reverse.check import reverse_validate

    _need(args, "pg-uri", "mongo-uri")
    r = reverse_validate(args.pg_uri, args.mongo_uri, args.db, args.mapping, args.report)
    print(f"reverse validation {r['status']}: {r['changes']:,} changes, {r['documents_compared']:,} documents and "
          f"link arrays compared" + "".join(f"\n  {x}" for x in r["reasons"]))
    for d in r["differences"][:10]:
        print(f"  {d['collection']} {d['_id']}: {d['difference']}")
    return 0 if r["status"] == "PASS" else 1


def cmd_estimate(args) -> int:
    from .estimate import estimate

    print(json.dumps(estimate(args.documents, args.bytes, args.staging, args.window_minutes), indent=1))
    return 0


def cmd_report(args) -> int:
    from .report import write_report

    if not os.path.isdir(args.artifacts):
        raise ConfigError(f"--artifacts {args.artifacts}: no such folder")
    md, page, status = write_report(args.artifacts)
    print(f"final report: {status}: {md} and {page}")
    return 0


COMMANDS = {"migrate": cmd_migrate, "plan": cmd_plan, "status": cmd_status, "schema": cmd_schema, "id": cmd_id,
            "mapping": cmd_mapping,
            "sample-data": cmd_sample_data, "validate": cmd_validate, "dump": cmd_dump, "restore": cmd_restore,
            "monitor": cmd_monitor, "report": cmd_report, "capture": cmd_capture, "reverse-sync": cmd_reverse_sync,
            "reverse-validate": cmd_reverse_validate, "estimate": cmd_estimate}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        return COMMANDS[args.command](args)
    except Mongo2PgError as exc:
        print(f"mongo2pg {args.command}: error: {redact_text(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        # A full disk, a read-only or missing folder for the log, checkpoint or report files.
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"mongo2pg {args.command}: error: {exc.strerror or exc}{where} -- free space or fix the path, then "
              "rerun (a migration resumes from its last committed batch)", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - an operator gets one line, never a traceback
        if os.environ.get("MONGO2PG_DEBUG"):
            raise
        first = (getattr(exc, "pgerror", None) or str(exc)).strip().splitlines()
        print(f"mongo2pg {args.command}: error: {type(exc).__name__}: {redact_text(first[0] if first else '')} -- "
              "committed work is checkpointed; rerun to resume once the cause is fixed (MONGO2PG_DEBUG=1 shows "
              "the traceback)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"mongo2pg {args.command}: interrupted; committed work is checkpointed, rerun to resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
