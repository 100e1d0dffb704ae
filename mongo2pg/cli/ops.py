"""`dump`, `restore`, `monitor`, `estimate`, `report`: the operations around the run."""

from __future__ import annotations

import json
import os
import time

from ..errors import ConfigError
from .common import need, transfer_progress


def cmd_dump(args) -> int:
    from ..ops.backup import dump_database, tree_size
    from ..redact import redact_uri

    need(args, "mongo-uri")
    started = time.monotonic()
    result = dump_database(args.mongo_uri, args.db, args.out, gzip_files=args.gzip,
                           progress=transfer_progress("dumped"))
    counts = result.counts()
    print(f"dump: {sum(counts.values()):,} documents in {len(counts)} collections from {redact_uri(args.mongo_uri)} "
          f"db={args.db} -> {args.out}/{args.db} ({tree_size(os.path.join(args.out, args.db)):,} bytes, "
          f"{time.monotonic() - started:.1f}s)")
    return 0


def cmd_restore(args) -> int:
    from ..ops.backup import restore_database

    need(args, "mongo-uri")
    started = time.monotonic()
    result = restore_database(args.dump, args.mongo_uri, db=args.db, target_db=args.target_db, drop=args.drop,
                              progress=transfer_progress("restored"))
    counts = result.counts()
    print(f"restore: {sum(counts.values()):,} documents in {len(counts)} collections -> db={result.db} "
          f"({sum(c.indexes for c in result.collections)} indexes, {time.monotonic() - started:.1f}s)")
    return 0


def cmd_monitor(args) -> int:
    from ..ops import monitor

    if args.action == "summary":
        result = monitor.summarize(monitor.read_history(args.history))
        print(json.dumps(result, indent=1))
        return 0 if result["success"] else 1
    need(args, "pg-uri")
    given = {}
    for item in args.threshold:
        key, _, value = item.partition("=")
        if key not in monitor.THRESHOLDS or not value:
            raise ConfigError(f"--threshold {item!r}: use KEY=VALUE with KEY one of {', '.join(monitor.THRESHOLDS)}")
        given[key] = value
    thresholds = monitor.thresholds_from(given)
    endpoints = None
    if args.endpoints:
        if not args.app_url:
            raise ConfigError("--endpoints needs --app-url (the base URL the paths are relative to)")
        try:
            endpoints = json.loads(open(args.endpoints).read())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"--endpoints {args.endpoints}: {exc}") from None
    snap = monitor.snapshot(args.pg_uri, args.health_url, args.disk_path, host_name=args.host_name,
                            app_url=args.app_url, endpoints=endpoints, pg_log=args.pg_log, log_minutes=args.log_minutes,
                            managed=args.managed)
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
          f"{db['changes_waiting'] if db['changes_waiting'] is not None else '-'}; "
          + (f"online catch-up {db['online_catch_up']['documents_waiting']} waiting, "
             f"{db['online_catch_up']['seconds_behind']} s behind; " if db.get("online_catch_up") else "")
          + (f"cpu, memory, disk {host['source']}" if host.get("managed") else
             f"cpu {host['cpu_percent']}%, memory {host['memory_percent']}%, disk {host['disk_percent']}% of "
             f"{host['disk_path']}"))
    for e in snap.get("endpoints") or []:
        print(f"  endpoint {e['name']}: {e['status']} {e['ms'] if e['ms'] is not None else '-'} ms "
              f"(target {e.get('max_ms') or '-'} ms)")
    for b in breaches:
        print(f"BREACH: {b}")
    return 1 if breaches else 0


def cmd_estimate(args) -> int:
    from ..ops.estimate import estimate

    print(json.dumps(estimate(args.documents, args.bytes, args.staging, args.window_minutes), indent=1))
    return 0


def cmd_report(args) -> int:
    from ..ops.report import write_report

    if not os.path.isdir(args.artifacts):
        raise ConfigError(f"--artifacts {args.artifacts}: no such folder")
    md, page, status = write_report(args.artifacts)
    print(f"final report: {status}: {md} and {page}")
    return 0


def cmd_window(args) -> int:
    from ..ops.window import write_window

    if not os.path.isdir(args.artifacts):
        raise ConfigError(f"--artifacts {args.artifacts}: no such folder")
    path, w = write_window(args.artifacts)
    print(f"maintenance window ({w['mode']}): {w['seconds']:.0f} s from maintenance on ({w['maintenance_on']}) to "
          f"traffic back ({w['traffic_back']}) -> {path}")
    for name, seconds in w["parts"].items():
        print(f"  {name}: {seconds:.0f} s")
    if "engine" in w:
        print(f"  the engine's part (drain to ready): {w['engine']['seconds']:.1f} s: "
              + ", ".join(f"{k} {v:.1f} s" for k, v in w["engine"]["parts"].items()))
    return 0
