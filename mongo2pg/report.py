"""The final migration report (runbook 6.6 step 1), from the artifacts the phases wrote.

Reads timeline.log, backup-*.json, migration-summary.json, migration-validation-report.json,
smoke-test-results.json and monitoring/monitoring-history.jsonl (each optional), and writes
final-report.md and final-report.html: one self-contained page (inline SVG charts, no script,
no external resource) that renders offline.
"""

from __future__ import annotations

import csv
import html
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import monitor
from .estimate import phase_seconds
from .files import open_private

RUNBOOK_RECORDS_PER_SECOND = 13.27
LAYERS = [("rowCountValidation", "Row counts"), ("sampleRecordValidation", "Field-level match"),
          ("referentialIntegrityValidation", "Referential integrity"), ("dataTypeValidation", "Type conversion"),
          ("schemaValidation", "Schema")]


ROLE_TITLES = {"migration_lead": "Migration Lead", "dba": "Database Admin", "backup_dba": "Backup DBA",
               "developer": "Application Developer", "devops": "DevOps Lead", "support_lead": "Support Team Lead",
               "on_call": "On-call", "cto": "CTO/Technical Director", "product_owner": "Product Owner"}


def _load(path: Path) -> Any:
    return json.loads(path.read_text()) if path.exists() else None


def _progress_sheet(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.read_text().splitlines())) if path.exists() else []


def loaded_over_time(sheet: list[dict[str, str]]) -> list[int]:
    """Records done over the load, row by row of the progress sheet (each table at its latest row)."""
    latest: dict[str, int] = {}
    out = []
    for row in sheet:
        if row["phase"] == "load":
            latest[row["table"]] = int(row["records"])
            out.append(sum(latest.values()))
    return out


def collect(artifacts: str | Path) -> dict[str, Any]:
    a = Path(artifacts)
    timeline = []
    if (a / "timeline.log").exists():
        for line in (a / "timeline.log").read_text().splitlines():
            when, _, event = line.partition(" ")
            timeline.append({"time": when, "event": event})
    history = monitor.read_history(a / "monitoring" / "monitoring-history.jsonl")
    return {"timeline": timeline, "backup_pre": _load(a / "backup-pre-migration.json"),
            "backup_final": _load(a / "backup-final.json"), "migration": _load(a / "migration-summary.json"),
            "validation": _load(a / "migration-validation-report.json"),
            "smoke": _load(a / "smoke-test-results.json"), "monitoring": history,
            "progress": _progress_sheet(a / "migration-progress.csv"), "team": _load(a / "team.json"),
            "estimate": _load(a / "duration-estimate.json"),
            # rollback.json outlives its run; it belongs to this report only when this timeline holds the rollback
            "rollback": _load(a / "rollback.json") if any(e["event"].startswith("rollback-complete")
                                                          for e in timeline) else None,
            "monitoring_summary": monitor.summarize(history) if history else None}


def verdict(data: dict[str, Any]) -> tuple[str, list[str]]:
    """SUCCESS only when every gate that ran passed; the reasons otherwise."""
    reasons = []
    mig, val, smoke, mon = data["migration"], data["validation"], data["smoke"], data["monitoring_summary"]
    if not mig or mig.get("status") != "complete" or not mig["totals"].get("reconciled"):
        reasons.append("migration not complete and reconciled")
    if not val or val.get("overallStatus") != "PASS":
        reasons.append("validation did not pass")
    if not smoke or smoke.get("failed"):
        reasons.append("smoke tests missing or failed")
    if mon is not None and not mon["success"]:
        reasons.append("monitoring window: " + "; ".join(mon["reasons"]))
    return ("SUCCESS" if not reasons else "NOT COMPLETE"), reasons


def markdown(data: dict[str, Any]) -> str:
    status, reasons = verdict(data)
    out = ["# Production Migration Final Report", "",
           f"**Status:** {status}" + (f" ({'; '.join(reasons)})" if reasons else ""),
           f"**Report date:** {datetime.now(UTC):%Y-%m-%d %H:%M} UTC", ""]
    if data["timeline"]:
        out += ["## Timeline", "", "| time (UTC) | event |", "| --- | --- |"]
        out += [f"| {e['time']} | {e['event']} |" for e in data["timeline"]] + [""]
    for key, title in (("backup_pre", "Pre-migration backup"), ("backup_final", "Final backup")):
        b = data[key]
        if b:
            out += [f"## {title}", "", f"- Directory: `{b['directory']}`", f"- Source: {b['source']}",
                    f"- {b['total_documents']} documents in {b['collection_count']} collections, "
                    f"{b['size_bytes']} bytes, tool {b['tool']}",
                    f"- Checksums verified: {b['verified']}; restore test: {b['restore_test']}; "
                    f"secondary copy: {b['secondary_copy'] or 'none'}", ""]
    mig = data["migration"]
    if mig:
        t = mig["totals"]
        out += ["## Data migration", "",
                f"- {t['source']:,} source documents: {t['loaded']:,} loaded, {t['rejected']:,} rejected "
                f"(each in migration-errors.log), {t['fixups']:,} fix-ups, {t['junction_rows']:,} junction rows",
                f"- {t['seconds']:.1f} s, {t['documents_per_second']:,} documents/s "
                f"(runbook: {RUNBOOK_RECORDS_PER_SECOND} records/s)",
                f"- Reconciled (source = loaded + rejected, every table): {t['reconciled']}", "",
                "| table | source | loaded | rejected | seconds | records/s |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
        out += [f"| {r['table']} | {r['source']} | {r['loaded']} | {r['rejected']} | {r['seconds']} | "
                f"{r['records_per_second'] if r['records_per_second'] is not None else '-'} |"
                for r in mig["tables"]] + [""]
    val = data["validation"]
    if val:
        s = val["summary"]
        out += ["## Validation", "", f"- Overall: **{val['overallStatus']}**; {val['rowsChecked']:,} rows checked in "
                f"{val['seconds']} s ({val['rowsPerSecond']:,} rows/s), field match {s['matchPercentage']}%", "",
                "| layer | status |", "| --- | --- |"]
        out += [f"| {name} | {val[key]['status']} |" for key, name in LAYERS if key in val] + [""]
    smoke = data["smoke"]
    if smoke:
        out += ["## Smoke tests", "", "| check | kind | ms | target ms | result |", "| --- | --- | ---: | ---: | --- |"]
        out += [f"| {r['name']} | {r['kind']} | {r['ms']} | {r['max_ms'] or '-'} | "
                f"{'FAIL' if not r['ok'] else 'SLOW' if r.get('slow') else 'ok'} |" for r in smoke["results"]] + [""]
    mon = data["monitoring_summary"]
    if mon:
        out += ["## Monitoring", "", f"- {mon['samples']} snapshots from {mon['from']} to {mon['to']}",
                f"- Uptime {mon['uptime_percent']}%, CPU avg {mon['cpu_percent_avg']}% (max {mon['cpu_percent_max']}%), "
                f"memory avg {mon['memory_percent_avg']}% (max {mon['memory_percent_max']}%)",
                f"- Snapshots with a breach: {mon['snapshots_with_breaches']}; success criteria met: {mon['success']}",
                ""]
    est = (data["estimate"] or {}).get("estimate")
    if est:
        actual = phase_seconds("\n".join(f"{e['time']} {e['event']}" for e in data["timeline"]))
        out += ["## Estimate vs actual", "",
                f"Staging's phases × {data['estimate']['ratio']} (size ratio by "
                f"{data['estimate']['staging']['size_basis']}) × {data['estimate']['buffer']}; declared window "
                f"{data['estimate']['window_minutes']} min.", "",
                "| phase | estimated min | actual min |", "| --- | ---: | ---: |"]
        out += [f"| {name} | {sec / 60:.1f} | {actual[name] / 60:.1f} |" if name in actual else
                f"| {name} | {sec / 60:.1f} | - |" for name, sec in est["phases_seconds"].items()] + [""]
    team = data["team"]
    if team and team.get("roles"):
        out += ["## Appendix: team and contacts", "", "| role | name | phone | email | hours |",
                "| --- | --- | --- | --- | --- |"]
        out += [f"| {ROLE_TITLES.get(role, role)} | {c.get('name') or '(unnamed)'} | {c.get('phone') or '-'} | "
                f"{c.get('email') or '-'} | {c.get('hours') or '-'} |" for role, c in team["roles"].items()] + [""]
        if team.get("escalation_path"):
            out += ["Escalation path:", ""] + [f"- {i}. {step}" for i, step in enumerate(team["escalation_path"], 1)]
            out += [""]
    rb = data["rollback"]
    if rb:
        how = (f"every write since go-live applied back to MongoDB (reverse-sync: {rb['reverse_sync']['changes']} "
               f"changes), reverse validation {rb['reverse_validation']}" if rb["mode"] == "reverse-sync"
               else f"MongoDB restored from the backup {rb['restored_from']} (writes since go-live not kept)")
        out += ["## Rollback", "", f"- Rolled back at {rb['completed_at']}: {how}", ""]
    return "\n".join(out)


def _bars(title: str, items: list[tuple[str, float]], unit: str, color: str = "#3b7dd8") -> str:
    """A horizontal bar chart as inline SVG."""
    if not items:
        return ""
    top = max(v for _, v in items) or 1
    row, label_w, bar_w = 18, 230, 420
    height = row * len(items) + 30
    parts = [f'<svg role="img" aria-label="{html.escape(title)}" width="{label_w + bar_w + 110}" height="{height}" '
             f'xmlns="http://www.w3.org/2000/svg" font-family="sans-serif" font-size="12">',
             f'<text x="0" y="14" font-weight="bold">{html.escape(title)}</text>']
    for i, (name, value) in enumerate(items):
        y = 24 + i * row
        w = max(1, int(bar_w * value / top))
        parts.append(f'<text x="{label_w - 6}" y="{y + 12}" text-anchor="end">{html.escape(name)}</text>'
                     f'<rect x="{label_w}" y="{y}" width="{w}" height="{row - 4}" fill="{color}"/>'
                     f'<text x="{label_w + w + 4}" y="{y + 12}">{value:,.0f} {html.escape(unit)}</text>')
    return "".join(parts) + "</svg>"


def _line(title: str, values: list[float], unit: str) -> str:
    """A line chart as inline SVG (monitoring history)."""
    if not values:
        return ""
    w, h, pad = 640, 140, 30
    top = max(values) or 1
    step = (w - 2 * pad) / max(len(values) - 1, 1)
    points = " ".join(f"{pad + i * step:.1f},{h - pad - (h - 2 * pad) * v / top:.1f}" for i, v in enumerate(values))
    return (f'<svg role="img" aria-label="{html.escape(title)}" width="{w}" height="{h}" '
            f'xmlns="http://www.w3.org/2000/svg" font-family="sans-serif" font-size="12">'
            f'<text x="0" y="14" font-weight="bold">{html.escape(title)} (max {top:g} {html.escape(unit)})</text>'
            f'<polyline fill="none" stroke="#d8643b" stroke-width="2" points="{points}"/>'
            f'<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="#999"/></svg>')


def _md_to_html(md: str) -> str:
    """Just enough Markdown (headings, lists, tables, bold, code) for our own report."""
    out, in_table, in_list = [], False, False
    for line in md.splitlines():
        esc = html.escape(line)
        esc = _inline(esc)
        if line.startswith("| ") and not set(line) <= set("|-: "):
            cells = [c.strip() for c in esc.strip("|").split("|")]
            if not in_table:
                out.append("<table><tr>" + "".join(f"<th>{c}</th>" for c in cells) + "</tr>")
                in_table = True
            else:
                out.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
            continue
        if line.startswith("| "):
            continue  # the separator row
        if in_table:
            out.append("</table>")
            in_table = False
        if line.startswith("- "):
            if not in_list:
                out.append("<ul>")
                in_list = True
            out.append(f"<li>{esc[2:]}</li>")
            continue
        if in_list:
            out.append("</ul>")
            in_list = False
        if line.startswith("## "):
            out.append(f"<h2>{esc[3:]}</h2>")
        elif line.startswith("# "):
            out.append(f"<h1>{esc[2:]}</h1>")
        elif line.strip():
            out.append(f"<p>{esc}</p>")
    out += ["</table>"] if in_table else []
    out += ["</ul>"] if in_list else []
    return "\n".join(out)


def _inline(text: str) -> str:
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


def html_page(data: dict[str, Any], md: str) -> str:
    charts = []
    mig = data["migration"]
    if mig:
        tables = sorted(mig["tables"], key=lambda r: -r["source"])
        charts.append(_bars("Records per table", [(r["table"], r["source"]) for r in tables], "records"))
        # A table with no documents has no throughput to draw.
        charts.append(_bars("Throughput per table", [(r["table"], r["records_per_second"]) for r in tables
                                                     if r["records_per_second"] is not None], "rec/s", "#4a9d5b"))
    done = loaded_over_time(data["progress"])
    if len(done) >= 2:
        charts.append(_line("Records loaded over the run (progress sheet)", done, "records"))
    val = data["validation"]
    if val:
        boxes = "".join(
            f'<span class="layer {"pass" if val[k]["status"] == "PASS" else "fail"}">{html.escape(n)}: '
            f'{html.escape(val[k]["status"])}</span>' for k, n in LAYERS if k in val)
        charts.append(f'<div class="layers">{boxes}</div>')
    hist = data["monitoring"]
    if hist:
        charts.append(_line("Health endpoint latency", [s["health"]["ms"] or 0 for s in hist if "health" in s], "ms"))
        charts.append(_line("Host CPU", [s["host"]["cpu_percent"] for s in hist], "%"))
        charts.append(_line("PostgreSQL connections", [s["database"]["connections"] for s in hist], "connections"))
    status, _ = verdict(data)
    style = ("body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}"
             ".layer{display:inline-block;padding:6px 10px;margin:4px;border-radius:4px;color:#fff}"
             ".pass{background:#4a9d5b}.fail{background:#c0392b}.status{font-size:20px;font-weight:bold}")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>Migration final report: {status}</title><style>{style}</style></head><body>\n"
            f"{_md_to_html(md)}\n<h2>Charts</h2>\n" + "\n".join(charts) + "\n</body></html>\n")


def write_report(artifacts: str | Path) -> tuple[Path, Path, str]:
    data = collect(artifacts)
    md = markdown(data)
    out_md, out_html = Path(artifacts) / "final-report.md", Path(artifacts) / "final-report.html"
    for path, text in ((out_md, md + "\n"), (out_html, html_page(data, md))):
        with open_private(path) as f:
            f.write(text)
    return out_md, out_html, verdict(data)[0]
