"""Post-migration monitoring (runbook 6.5): a snapshot, its thresholds, a history, a window summary.

A snapshot reads the application's health endpoint and key endpoints (status, latency against the
runbook's targets), PostgreSQL's activity (active, longest, waiting queries; connections against
max_connections), slow statements from pg_stat_statements, database and table sizes, index usage, the
errors per minute in PostgreSQL's own log, and the host's CPU, memory and the disk of PostgreSQL's data
directory. It runs on the database host (the monitoring role ships this package there), so the host
figures are the server's. `evaluate` compares it with the runbook's thresholds; `summarize` judges a
window of snapshots against the 48-hour success criteria.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ..connect import pg_connect
from ..errors import ConfigError
from ..files import open_private
from ..hostmem import meminfo_fraction
from ..reverse.capture import waiting as waiting_changes
from .httpcheck import http_check
from .state_read import readable_backlog

# The runbook's "key indicators" (6.5); every one can be overridden.
THRESHOLDS: dict[str, float] = {
    "health_ms": 500, "active_queries": 50, "longest_query_seconds": 10, "waiting_queries": 10,
    "connections_percent": 80, "slow_query_mean_ms": 1000, "cpu_percent": 80, "memory_percent": 85,
    "disk_percent": 80, "pg_errors_per_minute": 5, "online_seconds_behind": 300,
}
# ERROR, FATAL and PANIC lines of PostgreSQL's log, after a log_line_prefix that starts with %t or %m.
_LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(?:\.\d+)? (\S+) .*?\b(ERROR|FATAL|PANIC): ")
# Enough of a log's end for any window of minutes worth judging; the rest is not read.
_LOG_TAIL_BYTES = 8 << 20
# The 48-hour success criteria that a window of snapshots can show.
CRITERIA: dict[str, float] = {"uptime_percent": 99.9, "cpu_percent": 80, "memory_percent": 85}


# Where a managed server's host figures are: not here.
PROVIDER_CONSOLE = "from the provider's console"


def _cpu_percent(interval: float = 0.5) -> float:
    def sample() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(values), values[3] + values[4]  # total, idle + iowait

    total0, idle0 = sample()
    time.sleep(interval)
    total1, idle1 = sample()
    busy = (total1 - total0) - (idle1 - idle0)
    return round(100.0 * busy / max(total1 - total0, 1), 1)


def _memory_percent() -> float:
    return round(100.0 * (1 - meminfo_fraction()), 1)


def _health(url: str, timeout: float = 10.0) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            status = resp.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError as exc:
        return {"ok": False, "status": None, "ms": None, "error": str(exc)}
    return {"ok": status == 200, "status": status, "ms": round((time.perf_counter() - started) * 1000, 1)}


def _database(conn) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with conn.cursor() as cur:
        cur.execute("""
            SELECT count(*) FILTER (WHERE state = 'active' AND pid <> pg_backend_pid()),
                   coalesce(extract(epoch FROM max(now() - query_start) FILTER (WHERE state = 'active'
                                                                              AND pid <> pg_backend_pid())), 0),
                   count(*) FILTER (WHERE state = 'active' AND wait_event_type IS NOT NULL
                                    AND wait_event_type <> 'Activity' AND pid <> pg_backend_pid()),
                   (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'),
                   current_setting('max_connections')::int, pg_database_size(current_database())
            FROM pg_stat_activity WHERE datname = current_database()""")
        active, longest, waiting, conns, max_conns, size = cur.fetchone()
        out.update(active_queries=active, longest_query_seconds=round(float(longest), 1), waiting_queries=waiting,
                   connections=conns, max_connections=max_conns,
                   connections_percent=round(100.0 * conns / max_conns, 1), database_bytes=size)
        cur.execute("""
            SELECT relname, pg_total_relation_size(relid), seq_scan, coalesce(idx_scan, 0), n_live_tup
            FROM pg_stat_user_tables WHERE schemaname = 'public'
            ORDER BY pg_total_relation_size(relid) DESC LIMIT 10""")
        out["largest_tables"] = [{"table": t, "bytes": b, "seq_scan": s, "idx_scan": i, "rows": n}
                                 for t, b, s, i, n in cur.fetchall()]
        # What SQL tells wherever the server runs (a managed one included): the buffer cache, the database's
        # own error counters, the longest open transaction, sessions waiting on a lock, the replicas' lag.
        cur.execute("""
            SELECT round(100.0 * blks_hit / nullif(blks_hit + blks_read, 0), 1), deadlocks, conflicts,
                   xact_rollback,
                   (SELECT coalesce(extract(epoch FROM max(now() - xact_start)), 0) FROM pg_stat_activity
                    WHERE datname = current_database() AND xact_start IS NOT NULL AND pid <> pg_backend_pid()),
                   (SELECT count(*) FROM pg_locks WHERE NOT granted),
                   (SELECT count(*) FROM pg_stat_replication),
                   (SELECT extract(epoch FROM max(replay_lag)) FROM pg_stat_replication)
            FROM pg_stat_database WHERE datname = current_database()""")
        hit, deadlocks, conflicts, rollbacks, longest_xact, lock_waits, replicas, lag = cur.fetchone()
        out.update(cache_hit_percent=float(hit) if hit is not None else None, deadlocks=deadlocks,
                   conflicts=conflicts, rollbacks=rollbacks, longest_transaction_seconds=round(float(longest_xact), 1),
                   lock_waits=lock_waits, replicas=replicas,
                   replica_lag_seconds=round(float(lag), 1) if lag is not None else None)
        cur.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'")
        if cur.fetchone():
            cur.execute("""
                SELECT substring(query, 1, 100), calls, round(mean_exec_time::numeric, 1),
                       round(max_exec_time::numeric, 1)
                FROM pg_stat_statements WHERE mean_exec_time > 100 ORDER BY mean_exec_time DESC LIMIT 20""")
            out["slow_queries"] = [{"query": q, "calls": c, "mean_ms": float(m), "max_ms": float(x)}
                                   for q, c, m, x in cur.fetchall()]
        else:
            out["slow_queries"] = None  # pg_stat_statements not installed in this database
        # Writes since go-live not yet applied back to MongoDB (None: no change capture here)
        out["changes_waiting"] = waiting_changes(cur)
        # An online migration's catch-up before its cutover (None: none here, or not readable by this role)
        out["online_catch_up"] = readable_backlog(cur)
    conn.rollback()
    return out


def _current_logfile(data_dir: str) -> str | None:
    """The stderr log named in the data directory's current_logfiles (what pg_current_logfile reads)."""
    try:
        lines = Path(data_dir, "current_logfiles").read_text().splitlines()
    except OSError:
        return None
    return next((line.split(" ", 1)[1] for line in lines if line.startswith("stderr ")), None)


def _server_files(conn) -> tuple[str, str | None]:
    """PostgreSQL's data directory and its current log file (None when it logs to no file, or neither the
    login nor this host may read which), as the server reports them."""
    with conn.cursor() as cur:
        cur.execute("SHOW data_directory")
        data_dir = cur.fetchone()[0]
        # Asked first: a refused call would be an ERROR in the very log this counts.
        cur.execute("SELECT has_function_privilege('pg_current_logfile(text)', 'EXECUTE')")
        if cur.fetchone()[0]:
            cur.execute("SELECT pg_current_logfile('stderr')")
            log = cur.fetchone()[0]
        else:  # pg_monitor may not call it: read the file the server keeps the name in
            log = _current_logfile(data_dir)
    conn.rollback()
    if log and not os.path.isabs(log):
        log = os.path.join(data_dir, log)
    return data_dir, log


def pg_log_errors(log_file: str, minutes: float = 5, now: datetime | None = None) -> dict[str, Any]:
    """ERROR/FATAL/PANIC lines in the last `minutes` of PostgreSQL's log, per minute. Timestamps marked UTC
    or GMT are read as such, any other as this host's local time (the server's, as this runs beside it)."""
    now = now or datetime.now(UTC)
    since = now - timedelta(minutes=minutes)
    counts = {"ERROR": 0, "FATAL": 0, "PANIC": 0}
    with open(log_file, "rb") as f:
        f.seek(max(0, os.fstat(f.fileno()).st_size - _LOG_TAIL_BYTES))
        for raw in f:
            m = _LOG_LINE.match(raw.decode("utf-8", "replace"))
            if not m:
                continue
            stamp = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")
            stamp = stamp.replace(tzinfo=UTC) if m.group(2) in ("UTC", "GMT") else stamp.astimezone(UTC)
            if stamp >= since:
                counts[m.group(3)] += 1
    return {"log_file": log_file, "window_minutes": minutes, **{k.lower(): v for k, v in counts.items()},
            "per_minute": round(sum(counts.values()) / minutes, 2)}


def _disk(path: str) -> dict[str, Any]:
    usage = shutil.disk_usage(path)
    return {"disk_path": path, "disk_percent": round(100.0 * usage.used / usage.total, 1),
            "disk_total_bytes": usage.total, "disk_free_bytes": usage.free}


def endpoint_checks(app_url: str, endpoints: list[dict], timeout: float = 10.0) -> list[dict]:
    """The key endpoints in order (a check may capture an id for the next, as the smoke tests do)."""
    captured: dict = {}
    return [http_check(app_url, e, captured, timeout) for e in endpoints]


def snapshot(pg_uri: str, health_url: str | None = None, disk_path: str | None = None, *,
             host_name: str | None = None, app_url: str | None = None, endpoints: list[dict] | None = None,
             pg_log: str | None = None, log_minutes: float = 5, managed: bool = False) -> dict[str, Any]:
    """Every figure, measured here. The disk is PostgreSQL's data directory's file system unless `disk_path`
    says otherwise; the log is the server's current log file unless `pg_log` says otherwise. `managed`: a
    provider's server with no host of ours, so what SQL gives, and CPU, memory, disk and the log left to the
    provider's console (None, named so in the snapshot and the report)."""
    snap: dict[str, Any] = {"taken_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    if health_url:
        snap["health"] = _health(health_url)
    if app_url and endpoints:
        snap["endpoints"] = endpoint_checks(app_url, endpoints)
    conn = pg_connect(pg_uri, application_name="mongo2pg-monitor")
    try:
        snap["database"] = _database(conn)
        data_dir, current_log = _server_files(conn)
    finally:
        conn.close()
    snap["database"]["data_directory"] = data_dir
    if managed:
        snap["database"]["log_errors"] = None
        snap["host"] = {"name": host_name or "managed", "managed": True, "source": PROVIDER_CONSOLE,
                        "cpu_percent": None, "memory_percent": None, "disk_percent": None, "disk_path": None}
        return snap
    disk_path = disk_path or data_dir
    if not os.path.isdir(disk_path):
        raise ConfigError(f"PostgreSQL's data directory {disk_path} is not on this host ({socket.gethostname()}): "
                          "take the snapshot on the database host (the monitoring role does), or give --disk-path")
    log = pg_log or current_log
    if log and os.access(log, os.R_OK):
        snap["database"]["log_errors"] = pg_log_errors(log, log_minutes)
    else:
        snap["database"]["log_errors"] = None  # no log file to read here: not judged, and the report says so
    snap["host"] = {"name": host_name or socket.gethostname(), "cpu_percent": _cpu_percent(),
                    "memory_percent": _memory_percent(), **_disk(disk_path)}
    return snap


def thresholds_from(given: dict[str, Any]) -> dict[str, float]:
    """Threshold overrides as numbers; an unknown key or a value that is no number is a ConfigError naming it."""
    unknown = sorted(set(given) - set(THRESHOLDS))
    if unknown:
        raise ConfigError(f"unknown thresholds {unknown}; known: {', '.join(THRESHOLDS)}")
    try:
        return {k: float(v) for k, v in given.items()}
    except (TypeError, ValueError):
        bad = {k: v for k, v in given.items() if not _is_number(v)}
        raise ConfigError(f"thresholds must be numbers: {bad}") from None


def _is_number(v: Any) -> bool:
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return True


def evaluate(snap: dict[str, Any], thresholds: dict[str, float] | None = None) -> list[str]:
    """Breaches of the thresholds, one readable line each (empty: all within)."""
    t = {**THRESHOLDS, **(thresholds or {})}
    breaches = []
    health = snap.get("health")
    if health is not None:
        if not health["ok"]:
            breaches.append(f"health endpoint: status {health['status']} {health.get('error', '')}".strip())
        elif health["ms"] > t["health_ms"]:
            breaches.append(f"health endpoint: {health['ms']} ms > {t['health_ms']:g} ms")
    db, host = snap["database"], snap["host"]
    for key, where in (("active_queries", db), ("longest_query_seconds", db), ("waiting_queries", db),
                       ("connections_percent", db), ("cpu_percent", host), ("memory_percent", host),
                       ("disk_percent", host)):
        if where.get(key) is not None and where[key] > t[key]:
            breaches.append(f"{key}: {where[key]:g} > {t[key]:g}")
    online = db.get("online_catch_up")
    if online and online["seconds_behind"] > t["online_seconds_behind"]:
        breaches.append(f"online catch-up: {online['seconds_behind']:g} s behind the source > "
                        f"{t['online_seconds_behind']:g} s ({online['documents_waiting']} documents waiting)")
    errors = db.get("log_errors")
    if errors and errors["per_minute"] > t["pg_errors_per_minute"]:
        breaches.append(f"PostgreSQL log: {errors['per_minute']:g} errors/min > {t['pg_errors_per_minute']:g} "
                        f"(last {errors['window_minutes']:g} min of {errors['log_file']})")
    for e in snap.get("endpoints") or []:
        if not e["ok"]:
            breaches.append(f"endpoint {e['name']}: {e['error']}")
        elif e.get("max_ms") and e["ms"] > e["max_ms"]:
            breaches.append(f"endpoint {e['name']}: {e['ms']:g} ms > {e['max_ms']:g} ms")
    for q in db.get("slow_queries") or []:
        if q["mean_ms"] > t["slow_query_mean_ms"]:
            breaches.append(f"slow query ({q['mean_ms']:g} ms mean > {t['slow_query_mean_ms']:g}): {q['query']}")
    return breaches


def append_history(path: str | Path, snap: dict[str, Any], breaches: list[str]) -> None:
    path = Path(path)
    with open_private(path, "a") as f:
        f.write(json.dumps({**snap, "breaches": breaches}) + "\n")


def read_history(path: str | Path) -> list[dict[str, Any]]:
    p = Path(path)
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()] if p.exists() else []


def summarize(history: list[dict[str, Any]], criteria: dict[str, float] | None = None) -> dict[str, Any]:
    """The window against the success criteria the snapshots can show (uptime, CPU, memory); on a managed server
    CPU and memory are the provider's to show, and `judged` says which criteria were."""
    c = {**CRITERIA, **(criteria or {})}
    if not history:
        return {"samples": 0, "success": False, "reasons": ["no monitoring snapshot taken"]}
    with_health = [s for s in history if "health" in s]
    up = sum(1 for s in with_health if s["health"]["ok"])
    uptime = round(100.0 * up / len(with_health), 2) if with_health else None
    cpu = [s["host"]["cpu_percent"] for s in history if s["host"].get("cpu_percent") is not None]
    mem = [s["host"]["memory_percent"] for s in history if s["host"].get("memory_percent") is not None]
    out = {"samples": len(history), "from": history[0]["taken_at"], "to": history[-1]["taken_at"],
           "uptime_percent": uptime, "cpu_percent_avg": round(sum(cpu) / len(cpu), 1) if cpu else None,
           "cpu_percent_max": max(cpu, default=None),
           "memory_percent_avg": round(sum(mem) / len(mem), 1) if mem else None, "memory_percent_max": max(mem, default=None),
           "snapshots_with_breaches": sum(1 for s in history if s.get("breaches")),
           "judged": [k for k, v in (("uptime", uptime), ("cpu", cpu), ("memory", mem)) if v not in (None, [])],
           "not_measured": [k for k, v in (("cpu", cpu), ("memory", mem)) if not v]}
    if out["not_measured"]:
        out["not_measured_source"] = PROVIDER_CONSOLE
    reasons = []
    if uptime is not None and uptime < c["uptime_percent"]:
        reasons.append(f"uptime {uptime}% < {c['uptime_percent']}%")
    if cpu and out["cpu_percent_avg"] > c["cpu_percent"]:
        reasons.append(f"average CPU {out['cpu_percent_avg']}% > {c['cpu_percent']}%")
    if mem and out["memory_percent_avg"] > c["memory_percent"]:
        reasons.append(f"average memory {out['memory_percent_avg']}% > {c['memory_percent']}%")
    out.update(success=not reasons, reasons=reasons)
    return out
