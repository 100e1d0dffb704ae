"""The final report's text in the runbook's shape (6.6 step 1), executive summary first: what a product
owner reads to know whether the migration worked, how long the application was down and what is left
to do. report.py collects the artifacts and renders this Markdown (and its HTML page with charts)."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

from .estimate import WINDOW, event_times, phase_seconds, phases_of

RUNBOOK_RECORDS_PER_SECOND = 13.27  # the runbook's reference run: 1,254,390 records in 26 h 15 min
LAYERS = [("rowCountValidation", "Row counts"), ("sampleRecordValidation", "Field-level match"),
          ("referentialIntegrityValidation", "Referential integrity"), ("dataTypeValidation", "Type conversion"),
          ("schemaValidation", "Schema")]
ROLE_TITLES = {"migration_lead": "Migration Lead", "dba": "Database Admin", "backup_dba": "Backup DBA",
               "developer": "Application Developer", "devops": "DevOps Lead", "support_lead": "Support Team Lead",
               "on_call": "On-call", "cto": "CTO/Technical Director", "product_owner": "Product Owner"}
EXAMPLES_PER_REASON = 3


def duration(seconds: float | None) -> str:
    """1 h 05 min, 4 min 10 s, 12 s."""
    if seconds is None:
        return "-"
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{s // 60} min {s % 60:02d} s" if s >= 60 else f"{s} s"


def size(n: float | None) -> str:
    if n is None:
        return "-"
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    return "-"


def timeline_text(data: dict[str, Any]) -> str:
    return "\n".join(f"{e['time']} {e['event']}" for e in data["timeline"])


def _events(data: dict[str, Any]) -> dict[str, str]:
    """The first time of each event, as the timeline writes it."""
    return {name: f"{t:%Y-%m-%dT%H:%M:%SZ}" for name, t in event_times(timeline_text(data)).items()}


def rejects_by_reason(issues: list[dict[str, Any]]) -> list[tuple[str, int, list[str], list[str]]]:
    """(reason, count, tables, example ids) for the rejected records, most frequent first."""
    counts: Counter[str] = Counter()
    tables: dict[str, set[str]] = defaultdict(set)
    examples: dict[str, list[str]] = defaultdict(list)
    for i in issues:
        if i["severity"] != "reject":
            continue
        counts[i["reason"]] += 1
        tables[i["reason"]].add(i["table"])
        if len(examples[i["reason"]]) < EXAMPLES_PER_REASON:
            examples[i["reason"]].append(f"{i['table']} {i['_id']}")
    return [(r, n, sorted(tables[r]), examples[r]) for r, n in counts.most_common()]


def _summary(data: dict[str, Any], status: str, reasons: list[str]) -> list[str]:
    mig, val, ev = data["migration"], data["validation"], _events(data)
    phases = phase_seconds(timeline_text(data))
    out = ["## Executive summary", ""]
    out.append(f"- **Status: {status}**" + (f" ({'; '.join(reasons)})" if reasons else ""))
    if mig:
        t = mig["totals"]
        share = 100.0 * t["rejected"] / t["source"] if t["source"] else 0.0
        out.append(f"- **Records:** {t['loaded']:,} of {t['source']:,} source records migrated into "
                   f"{len(mig['tables'])} tables and {len(mig['junctions'])} junction tables "
                   f"({t['junction_rows']:,} links); every table reconciled: {'yes' if t['reconciled'] else 'NO'}")
        out.append(f"- **Errors:** {t['rejected']:,} records rejected ({share:.3f}%), each listed with its reason "
                   "below and in migration-errors.log; none dropped silently")
    if val:
        out.append(f"- **Data integrity:** {val['summary']['matchPercentage']}% of "
                   f"{val['summary']['fieldsCompared']:,} fields match their source; validation "
                   f"**{val['overallStatus']}** on every record ({val['rowsChecked']:,} rows)")
    if "maintenance window" in phases:
        out.append(f"- **Maintenance window:** {duration(phases['maintenance window'])}, from the application "
                   f"stopped ({ev[WINDOW[0]]}) to traffic back ({ev[WINDOW[1]]})")
    if data["timeline"]:
        first, last = data["timeline"][0]["time"], data["timeline"][-1]["time"]
        elapsed = (datetime.fromisoformat(last.replace("Z", "+00:00"))
                   - datetime.fromisoformat(first.replace("Z", "+00:00"))).total_seconds()
        out.append(f"- **Total elapsed:** {duration(elapsed)} ({first} to {last})")
    if mig and mig["totals"]["seconds"]:
        rate = mig["totals"]["documents_per_second"]
        out.append(f"- **Speed:** {rate:,} records/s, {rate / RUNBOOK_RECORDS_PER_SECOND:,.0f}× the runbook's "
                   f"reference run ({RUNBOOK_RECORDS_PER_SECOND} records/s)")
    return out + [""]


def _timeline(data: dict[str, Any]) -> list[str]:
    phases, ev = phase_seconds(timeline_text(data)), _events(data)
    if not data["timeline"]:
        return []
    out = ["## Timeline", "", "| phase | start (UTC) | end (UTC) | duration |", "| --- | --- | --- | ---: |"]
    for name, start, end in phases_of(event_times(timeline_text(data))):
        if name in phases:
            out.append(f"| {name} | {ev[start]} | {ev[end]} | {duration(phases[name])} |")
    if "maintenance window" in phases:
        out.append(f"| **maintenance window** | {ev[WINDOW[0]]} | {ev[WINDOW[1]]} | "
                   f"**{duration(phases['maintenance window'])}** |")
    return out + [""]


def _window(data: dict[str, Any]) -> list[str]:
    """The maintenance window from maintenance on to traffic back, its parts (cutover-window.json), and online
    the engine's part and the catch-up's lag before the window."""
    w = data.get("window")
    if not w:
        return []
    out = ["## Maintenance window", "",
           f"**{duration(w['seconds'])}** ({w['mode']}), from maintenance on ({w['maintenance_on']}) to traffic back "
           f"({w['traffic_back']}).", "", "| part | duration |", "| --- | ---: |"]
    out += [f"| {name} | {duration(s)} |" for name, s in w["parts"].items()]
    if "engine" in w:
        eng = w["engine"]
        out += ["", f"The engine's part (drain to ready to switch): {eng['seconds']:.1f} s, "
                + ", ".join(f"{k} {v:.1f} s" for k, v in eng["parts"].items())
                + f"; {eng['drained_events']} events drained."]
    lag = data.get("online_history") or []
    if lag:
        worst = max(lag, key=lambda s: s["seconds_behind"])
        out += ["", f"Online catch-up before the window: {len(lag)} samples, at most {worst['seconds_behind']} s behind "
                f"the source ({worst['documents_waiting']} documents waiting, {worst['updated_at']}); the last: "
                f"{lag[-1]['seconds_behind']} s behind, {lag[-1]['documents_waiting']} waiting."]
    return out + [""]


def _migration(data: dict[str, Any]) -> list[str]:
    mig = data["migration"]
    if not mig:
        return []
    t = mig["totals"]
    source_bytes = ((data["estimate"] or {}).get("this_run") or {}).get("source_bytes")
    snaps = data["monitoring"]
    pg_bytes = snaps[-1]["database"]["database_bytes"] if snaps else None
    out = ["## Data migration", "",
           f"- Records: {t['source']:,} source, {t['loaded']:,} loaded, {t['rejected']:,} rejected, "
           f"{t['fixups']:,} fixed up (kept, with a note in the log), {t['junction_rows']:,} junction rows",
           f"- Tables: {len(mig['tables'])} entity tables and {len(mig['junctions'])} junction tables",
           f"- Speed: {t['documents_per_second']:,} records/s over {duration(t['seconds'])}",
           f"- Database size: MongoDB {size(source_bytes)} (BSON) → PostgreSQL {size(pg_bytes)}",
           f"- Integrity: source = loaded + rejected for every table: {'yes' if t['reconciled'] else 'NO'}", "",
           "| table | source | loaded | rejected | seconds | records/s |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    out += [f"| {r['table']} | {r['source']:,} | {r['loaded']:,} | {r['rejected']:,} | {r['seconds']} | "
            f"{format(r['records_per_second'], ',') if r['records_per_second'] is not None else '-'} |"
            for r in sorted(mig["tables"], key=lambda r: -r["source"])]
    return out + [""]


def _rejects(data: dict[str, Any]) -> list[str]:
    if not data["migration"] and not data["issues"]:
        return []
    groups = rejects_by_reason(data["issues"])
    out = ["### Rejected records", ""]
    if not groups:
        return out + ["None: every source record was migrated.", ""]
    out += ["| reason | records | tables | examples (table, _id) |", "| --- | ---: | --- | --- |"]
    out += [f"| {r} | {n:,} | {', '.join(ts)} | {'; '.join(ex)} |" for r, n, ts, ex in groups]
    return out + ["", "Every rejected record is in migration-errors.log with its document, the field and the reason.", ""]


def _validation(data: dict[str, Any]) -> list[str]:
    val = data["validation"]
    if not val:
        return []
    s = val["summary"]
    out = ["## Validation results", "",
           f"- Overall: **{val['overallStatus']}**: {val['rowsChecked']:,} rows checked in {val['seconds']} s "
           f"({val['rowsPerSecond']:,} rows/s); {s['fieldsCompared']:,} fields compared, "
           f"{s['fieldsMismatched']:,} differ ({s['matchPercentage']}% match)", "",
           "| layer | status |", "| --- | --- |"]
    return out + [f"| {name} | {val[key]['status']} |" for key, name in LAYERS if key in val] + [""]


def _performance(data: dict[str, Any]) -> list[str]:
    smoke = data["smoke"]
    if not smoke:
        return []
    out = ["## Performance", "", "The smoke tests before traffic reopened, against the runbook's targets:", "",
           "| check | kind | ms | target ms | result |", "| --- | --- | ---: | ---: | --- |"]
    return out + [f"| {r['name']} | {r['kind']} | {r['ms']} | {r['max_ms'] or '-'} | "
                  f"{'FAIL' if not r['ok'] else 'SLOW' if r.get('slow') else 'ok'} |" for r in smoke["results"]] + [""]


def _stability(data: dict[str, Any]) -> list[str]:
    mon, hist = data["monitoring_summary"], data["monitoring"]
    if not mon:
        return []
    errors = [s["database"]["log_errors"]["per_minute"] for s in hist if s["database"].get("log_errors")]
    conns = [s["database"]["connections"] for s in hist]
    managed = bool(hist[-1]["host"].get("managed"))
    out = ["## Stability and resources", "",
           f"- {mon['samples']} monitoring snapshots of {hist[-1]['host'].get('name', 'the database host')}, "
           f"{mon['from']} to {mon['to']}",
           f"- Uptime: {mon['uptime_percent']}% of health checks answered (criterion 99.9%)",
           "- PostgreSQL errors: " + (f"{max(errors) if errors else '-'} per minute at most, from its own log"
                                        if not managed else "from the provider's console (its log is not ours)"),
           f"- Connections: {min(conns)} to {max(conns)} (of {hist[-1]['database']['max_connections']})",
           f"- CPU: average {mon['cpu_percent_avg']}%, peak {mon['cpu_percent_max']}%; memory: average "
           f"{mon['memory_percent_avg']}%, peak {mon['memory_percent_max']}%" if not mon.get("not_measured") else
           f"- CPU, memory and disk: {mon.get('not_measured_source', 'not measured')} (a managed server: the "
           f"criteria judged here are {', '.join(mon.get('judged') or ['none'])})",
           f"- 48-hour success criteria met so far: {'yes' if mon['success'] else 'NO: ' + '; '.join(mon['reasons'])}"]
    return out + [""]


def _issues(data: dict[str, Any]) -> list[str]:
    found = []
    for e in data["timeline"]:
        ev = e["event"]
        if ev.startswith(("preflight NO-GO", "validation FAIL", "rollback", "migration-end status=")) and \
                not ev.endswith("status=complete"):
            found.append(f"{e['time']}: {ev}")
        elif ev.startswith("notify") and "failed" in ev:
            found.append(f"{e['time']}: {ev} (the phase went on)")
    breaches = [s for s in data["monitoring"] if s.get("breaches")]
    if breaches:
        found.append(f"{len(breaches)} monitoring snapshots breached a threshold, e.g. {breaches[0]['taken_at']}: "
                     f"{breaches[0]['breaches'][0]}")
    mig = data["migration"]
    if mig and mig.get("status") != "complete":
        found.append(f"the migration ended {mig.get('status')}")
    out = ["## Issues and resolutions", ""]
    return out + ([f"- {f}" for f in found] if found else ["None recorded: no gate failed, no guard stopped a run, "
                                                           "no threshold was breached."]) + [""]


def _estimate(data: dict[str, Any]) -> list[str]:
    e = data["estimate"] or {}
    est = e.get("estimate")
    if not est:
        return []
    actual = phase_seconds(timeline_text(data))
    out = ["## Estimate vs actual", "",
           f"Staging's phases × {e['ratio']} (size ratio by {e['staging']['size_basis']}) × {e['buffer']}; declared "
           f"window {e['window_minutes']} min.", "",
           "| phase | estimated min | actual min |", "| --- | ---: | ---: |"]
    return out + [f"| {name} | {sec / 60:.1f} | {actual[name] / 60:.1f} |" if name in actual else
                  f"| {name} | {sec / 60:.1f} | - |" for name, sec in est["phases_seconds"].items()] + [""]


def _rollback(data: dict[str, Any]) -> list[str]:
    rb = data["rollback"]
    if not rb:
        return []
    how = (f"every write since go-live applied back to MongoDB (reverse-sync: {rb['reverse_sync']['changes']} "
           f"changes), reverse validation {rb['reverse_validation']}" if rb["mode"] == "reverse-sync"
           else f"MongoDB restored from the backup {rb['restored_from']} (writes since go-live not kept)")
    return ["## Rollback", "", f"- Rolled back at {rb['completed_at']}: {how}", ""]


def _signoff(data: dict[str, Any]) -> list[str]:
    roles = ((data["team"] or {}).get("roles")) or {r: {} for r in ("migration_lead", "dba", "product_owner")}
    out = ["## Sign-off", "", "| role | name | signature | date |", "| --- | --- | --- | --- |"]
    return out + [f"| {ROLE_TITLES.get(r, r)} | {c.get('name') or ''} | ____________ | ________ |"
                  for r, c in roles.items()] + [""]


def _appendices(data: dict[str, Any]) -> list[str]:
    out = []
    team = data["team"]
    if team and team.get("roles"):
        out += ["## Appendix: team and contacts", "", "| role | name | phone | email | hours |",
                "| --- | --- | --- | --- | --- |"]
        out += [f"| {ROLE_TITLES.get(role, role)} | {c.get('name') or '(unnamed)'} | {c.get('phone') or '-'} | "
                f"{c.get('email') or '-'} | {c.get('hours') or '-'} |" for role, c in team["roles"].items()] + [""]
        if team.get("escalation_path"):
            out += ["Escalation path:", ""] + [f"- {i}. {step}" for i, step in enumerate(team["escalation_path"], 1)]
            out += [""]
    for key, title in (("backup_pre", "Pre-migration backup"), ("backup_final", "Final backup")):
        b = data[key]
        if b:
            out += [f"## Appendix: {title.lower()}", "", f"- Directory: `{b['directory']}`", f"- Source: {b['source']}",
                    f"- {int(b['total_documents']):,} documents in {b['collection_count']} collections, "
                    f"{size(int(b['size_bytes']))}, tool {b['tool']}",
                    f"- Checksums verified: {b['verified']}; restore test: {b['restore_test']}; "
                    f"secondary copy: {b['secondary_copy'] or 'none'}", ""]
    if data["timeline"]:
        out += ["## Appendix: timeline events", "", "| time (UTC) | event |", "| --- | --- |"]
        out += [f"| {e['time']} | {e['event']} |" for e in data["timeline"]] + [""]
    return out


def markdown(data: dict[str, Any], status: str, reasons: list[str]) -> str:
    out = ["# Production Migration Final Report", "",
           f"**Report date:** {datetime.now(UTC):%Y-%m-%d %H:%M} UTC", ""]
    for part in (_summary(data, status, reasons), _timeline(data), _window(data), _migration(data), _rejects(data), _validation(data),
                 _performance(data), _stability(data), _issues(data), _estimate(data), _rollback(data),
                 _signoff(data), _appendices(data)):
        out += part
    return "\n".join(out)
