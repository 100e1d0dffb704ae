"""The command line's one parser: every command and its flags. The migration's and validation's flags, and
the source and target options every command shares, are made from the engine's option fields
(mongo2pg/options.py: `knob`), so their names, defaults, types and help are stated once."""

from __future__ import annotations

import argparse

from .. import __version__
from ..migration.options import Options
from ..options import Knob, RunOptions, env_default, knobs
from ..validation.options import ValidateOptions

SOURCE = ("mongo_uri", "dump", "db")


def _flag(k: Knob) -> str:
    return k.flag or "--" + k.name.replace("_", "-")


def _help(k: Knob) -> str:
    text = (k.flag_help if k.inverted else k.help).replace("%", "%%")
    if k.env:
        text += f" (env {k.env})"
    if k.type is not bool and k.default not in (None, argparse.SUPPRESS) and not k.required:
        text += " (default: %(default)s)"
    return text


def add_knobs(p: argparse.ArgumentParser, cls: type, only: tuple[str, ...] | None = None,
              skip: tuple[str, ...] = ()) -> None:
    """The flags of an options dataclass's knobs (all, or `only` these), in field order."""
    groups: dict[str, argparse._ArgumentGroup] = {}
    for k in knobs(cls):
        if (only is not None and k.name not in only) or k.name in skip:
            continue
        target = groups.setdefault(k.group, p.add_argument_group(k.group)) if k.group else p
        if k.type is bool:
            target.add_argument(_flag(k), dest=k.name, action="store_false" if k.inverted else "store_true",
                                default=k.default, help=_help(k))
            continue
        target.add_argument(_flag(k), dest=k.name, type=k.type, default=env_default(k), choices=k.choices,
                            metavar=k.metavar, help=_help(k))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mongo2pg", description="MongoDB -> PostgreSQL migration engine "
                                "(batched COPY, exactly-once checkpoints, full validation).")
    p.add_argument("--version", action="version", version=f"mongo2pg {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    m = sub.add_parser("migrate", help="migrate a MongoDB database or dump into PostgreSQL (resumes by default)")
    add_knobs(m, Options)
    m.add_argument("--summary-file", help="write the final summary as JSON here")
    m.add_argument("--quiet", action="store_true", help="no progress output, only the summary")

    pl = sub.add_parser("plan", help="show what migrate would do (tables in order, source counts); writes nothing")
    add_knobs(pl, RunOptions, only=(*SOURCE, "mapping"))

    st = sub.add_parser("status", help="show the checkpoint state stored in the target database")
    add_knobs(st, RunOptions, only=("pg_uri",))

    sc = sub.add_parser("schema", help="create or check the target schema")
    sc.add_argument("action", choices=["apply", "finalize", "diff", "show", "prisma"],
                    help="apply: enums, tables, primary keys; finalize: indexes and foreign keys; "
                         "diff: compare the live schema with the mapping; show: print the expected schema; "
                         "prisma: write the PostgreSQL-era schema.prisma of the mapping")
    add_knobs(sc, RunOptions, only=("pg_uri", "mapping"))
    sc.add_argument("--out", help="with prisma: write the schema.prisma here (default: print it)")
    sc.add_argument("--reference", help="with diff: compare against this schema JSON instead of the mapping")
    sc.add_argument("--stage", choices=["final", "apply"], default="final",
                    help="with diff: 'apply' checks enums, tables, columns and keys only (before the load "
                         "adds indexes and foreign keys); default: final")

    mp = sub.add_parser("mapping", help="write a mapping for another application")
    mp.add_argument("action", choices=["from-prisma"],
                    help="from-prisma: from the application's MongoDB-era schema.prisma (read by Prisma's parser)")
    mp.add_argument("schema", help="the MongoDB-era schema.prisma")
    mp.add_argument("--out", help="write the mapping YAML here (default: print it)")
    mp.add_argument("--naming", choices=["prisma", "nextcrm"], default="prisma",
                    help="names of junction tables, their columns and indexes: Prisma's conventions (default) "
                         "or NextCRM's choices")
    mp.add_argument("--name", help="the mapping's name (default: the schema file's folder or stem)")

    ac = sub.add_parser("app-check", help="does the database fit the app's current schema.prisma (enum values, "
                        "required fields, types, tables and columns)? One line per problem, exit 1; or all clear")
    ac.add_argument("--schema", required=True, help="the application's current schema.prisma (PostgreSQL era)")
    add_knobs(ac, RunOptions, only=("pg_uri",))

    rc = sub.add_parser("record", help="one record, as the migration left it: its document, row and links, "
                        "compared by validation's rules, its log entries and changes since go-live")
    rc.add_argument("id", help="the record's ObjectId, its UUID, or a string id")
    add_knobs(rc, RunOptions, only=("pg_uri", *SOURCE, "mapping", "error_log"))
    rc.add_argument("--json", help="also write what was found as JSON here (0600)")

    rm = sub.add_parser("remigrate", help="load documents fixed in the source again, through the migration's rules")
    rm.add_argument("ids", nargs="*", help="ObjectIds, UUIDs or string ids of the records")
    rm.add_argument("--rejects", action="store_true", help="every record whose last log entry is a reject")
    rm.add_argument("--reason", action="append", metavar="REASON",
                    help="with --rejects: only those rejected for this reason (repeatable), e.g. duplicate_key")
    add_knobs(rm, RunOptions, only=("pg_uri", *SOURCE, "mapping", "error_log"))

    i = sub.add_parser("id", help="convert an ObjectId to its UUID or back")
    i.add_argument("value", help="24-hex ObjectId or UUID")

    sd = sub.add_parser("sample-data", help="generate NextCRM-shaped data (deterministic; a lab fixture)")
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
    add_knobs(v, ValidateOptions)

    d = sub.add_parser("dump", help="back up a MongoDB database in mongodump's format (streams)")
    add_knobs(d, RunOptions, only=("mongo_uri", "db"))
    d.add_argument("--out", required=True, help="output folder; the dump goes to OUT/<db>/ (mode 0700)")
    d.add_argument("--gzip", action="store_true", help="compress .bson and .metadata.json files, as mongodump --gzip")

    r = sub.add_parser("restore", help="restore a mongodump-format folder into MongoDB (documents and indexes)")
    r.add_argument("--dump", required=True, help="folder `mongodump --out` wrote (holding <db>/), or the <db> folder")
    add_knobs(r, RunOptions, only=("mongo_uri", "db"))
    r.add_argument("--target-db", help="database to restore into (default: the same name)")
    r.add_argument("--drop", action="store_true", help="drop each target collection before restoring it")

    mo = sub.add_parser("monitor", help="post-migration monitoring: a snapshot against thresholds, or a window summary")
    mo.add_argument("action", choices=["snapshot", "summary"])
    add_knobs(mo, RunOptions, only=("pg_uri",))
    mo.add_argument("--health-url", help="the application's health endpoint")
    mo.add_argument("--history", default="monitoring-history.jsonl", help="JSON-lines history (default: %(default)s)")
    mo.add_argument("--disk-path", help="file system whose usage counts (default: PostgreSQL's data directory, "
                    "which must then be on this host)")
    mo.add_argument("--managed", action="store_true",
                    help="a provider's server (no host of ours): what SQL gives; CPU, memory, disk and its log are "
                    "left to the provider's console")
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
    add_knobs(ca, RunOptions, only=("pg_uri", "mapping", "retry_seconds"))
    ca.add_argument("--reader", action="append", default=[], metavar="ROLE",
                    help="a role that may count the waiting changes (default: pg_monitor)")
    on = sub.add_parser("online", help="online migration: change streams opened before the bulk read, changed ids "
                        "stored with their resume tokens (capture), the marked documents applied (apply); both in one "
                        "long-running loop (run; start/stop it detached), and the cutover (drain, unique keys, indexes, "
                        "counts)")
    on.add_argument("action", choices=["capture", "apply", "run", "start", "stop", "status", "cutover", "reset",
                                       "check"])
    add_knobs(on, RunOptions, only=("pg_uri", "mongo_uri", "db", "mapping", "retry_seconds"))
    on.add_argument("--batch", type=int, default=1000, help="events per committed batch (default: %(default)s)")
    on.add_argument("--seconds", type=float, default=0, help="stop after this many seconds (default: run until stopped)")
    on.add_argument("--until-idle", type=float, default=0, metavar="SECONDS",
                    help="stop once no event came for this many seconds")
    on.add_argument("--collection", help="the collection to forget (reset)")
    on.add_argument("--error-log", help="the migration's error log, for apply's rejects (default: none)")
    on.add_argument("--status-file", help="run/start: the service's figures as JSON, rewritten every second (0600); "
                    "status: read it too")
    on.add_argument("--history-file", help="run/start: the service's figures appended as JSON lines every 5 s "
                    "(0600): the catch-up's lag over time, for the final report")
    on.add_argument("--pid-file", help="start/stop: the detached service's pid file (0600)")
    on.add_argument("--log-file", help="start: the detached service's log (0600, appended)")
    on.add_argument("--alarm-minutes", type=float, default=5,
                    help="run: a HIGH line when the backlog grows this long (default: %(default)s)")
    on.add_argument("--idle-seconds", type=float, default=1.0,
                    help="cutover: the drain ends when no event came for this long (default: %(default)s)")
    on.add_argument("--fresh", action="store_true", help="start: forget the stored tokens and changes first (a new "
                    "online migration, its bulk starting over)")
    on.add_argument("--bulk-seconds", type=float, help="check: the estimated bulk's duration (its oplog need)")
    on.add_argument("--min-oplog-hours", type=float, default=24,
                    help="check: the oplog window asked for at least (default: %(default)s, as AWS DMS)")
    on.add_argument("--report", help="cutover: its parts and counts as JSON here (0600)")
    for name, text in (("reverse-sync", "apply the captured changes to MongoDB, until none waits (rollback)"),
                       ("reverse-validate", "MongoDB against PostgreSQL for every captured change: PASS or FAIL")):
        rv = sub.add_parser(name, help=text)
        add_knobs(rv, RunOptions, only=("pg_uri", "mongo_uri", "db", "mapping", "retry_seconds"))
        if name == "reverse-sync":
            rv.add_argument("--batch", type=int, default=1000, help="changes per batch (default: %(default)s)")
        else:
            rv.add_argument("--report", help="write the result as JSON here (0600)")

    es = sub.add_parser("estimate", help="the duration estimate: staging's phases x size ratio x 1.5, against the window")
    es.add_argument("--documents", type=int, required=True, help="this run's source documents")
    es.add_argument("--bytes", type=int, required=True, help="this run's source BSON bytes")
    es.add_argument("--staging", help="a copy of the staging run's artifacts folder (timeline.log, ...)")
    es.add_argument("--window-minutes", type=float, help="the maintenance window declared for this run")

    wi = sub.add_parser("window", help="the maintenance window (maintenance on to traffic back) and its parts, from "
                        "the artifacts' timeline (and online-cutover.json): cutover-window.json")
    wi.add_argument("--artifacts", required=True, help="the folder the phases wrote their artifacts to")
    rp = sub.add_parser("report", help="write the final report (Markdown and self-contained HTML) from the artifacts")
    rp.add_argument("--artifacts", required=True, help="the folder the phases wrote their artifacts to")
    return p
