"""Post-migration monitoring (runbook 6.5): a snapshot, its thresholds, a history, a window summary.

A snapshot reads the application's health endpoint (status, latency), PostgreSQL's activity
(active, longest, waiting queries; connections against max_connections), slow statements from
pg_stat_statements, database and table sizes, index usage, and the host's CPU, memory and disk.
`evaluate` compares it with the runbook's thresholds; `summarize` judges a window of snapshots
against the 48-hour success criteria.
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .connect import pg_connect
from .files import open_private

# The runbook's "key indicators" (6.5); every one can be overridden.
THRESHOLDS: dict[str, float] = {
    "health_ms": 500, "active_queries": 50, "longest_query_seconds": 10, "waiting_queries": 10,
    "connections_percent": 80, "slow_query_mean_ms": 1000, "cpu_percent": 80, "memory_percent": 85,
    "disk_percent": 80,
}
# The 48-hour success criteria that a window of snapshots can show.
CRITERIA: dict[str, float] = {"uptime_percent": 99.9, "cpu_percent": 80, "memory_percent": 85}


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
    info = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, _, rest = line.partition(":")
        info[key] = int(rest.split()[0])
    return round(100.0 * (1 - info["MemAvailable"] / info["MemTotal"]), 1)


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
    conn.rollback()
    return out


def snapshot(pg_uri: str, health_url: str | None = None, disk_path: str = "/") -> dict[str, Any]:
    snap: dict[str, Any] = {"taken_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    if health_url:
        snap["health"] = _health(health_url)
    conn = pg_connect(pg_uri, application_name="mongo2pg-monitor")
    try:
        snap["database"] = _database(conn)
    finally:
        conn.close()
    usage = shutil.disk_usage(disk_path)
    snap["host"] = {"cpu_percent": _cpu_percent(), "memory_percent": _memory_percent(),
                    "disk_percent": round(100.0 * usage.used / usage.total, 1), "disk_path": disk_path}
    return snap


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
        if where[key] > t[key]:
            breaches.append(f"{key}: {where[key]:g} > {t[key]:g}")
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
    """The window against the success criteria the snapshots can show (uptime, CPU, memory)."""
    c = {**CRITERIA, **(criteria or {})}
    if not history:
        return {"samples": 0, "success": False, "reasons": ["no monitoring snapshot taken"]}
    with_health = [s for s in history if "health" in s]
    up = sum(1 for s in with_health if s["health"]["ok"])
    uptime = round(100.0 * up / len(with_health), 2) if with_health else None
    cpu = [s["host"]["cpu_percent"] for s in history]
    mem = [s["host"]["memory_percent"] for s in history]
    out = {"samples": len(history), "from": history[0]["taken_at"], "to": history[-1]["taken_at"],
           "uptime_percent": uptime, "cpu_percent_avg": round(sum(cpu) / len(cpu), 1), "cpu_percent_max": max(cpu),
           "memory_percent_avg": round(sum(mem) / len(mem), 1), "memory_percent_max": max(mem),
           "snapshots_with_breaches": sum(1 for s in history if s.get("breaches"))}
    reasons = []
    if uptime is not None and uptime < c["uptime_percent"]:
        reasons.append(f"uptime {uptime}% < {c['uptime_percent']}%")
    if out["cpu_percent_avg"] > c["cpu_percent"]:
        reasons.append(f"average CPU {out['cpu_percent_avg']}% > {c['cpu_percent']}%")
    if out["memory_percent_avg"] > c["memory_percent"]:
        reasons.append(f"average memory {out['memory_percent_avg']}% > {c['memory_percent']}%")
    out.update(success=not reasons, reasons=reasons)
    return out
