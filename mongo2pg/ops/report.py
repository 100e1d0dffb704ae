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
from pathlib import Path
from typing import Any

from ..files import open_private
from ..issues import read_error_log
from . import monitor, report_md
from .estimate import event_times, phases_of
from .report_md import LAYERS


def _load(path: Path) -> Any:
    return json.loads(path.read_text()) if path.exists() else None


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


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
            "issues": [i.to_record() for i in read_error_log(a / "migration-errors.log")]
            if (a / "migration-errors.log").exists() else [],
            "estimate": _load(a / "duration-estimate.json"),
            "window": _load(a / "cutover-window.json"),
            "online_history": _jsonl(a / "online" / "online-history.jsonl"),
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
    return report_md.markdown(data, *verdict(data))


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
    """A line chart as inline SVG, a dot on every value (so two or three snapshots still show)."""
    if not values:
        return ""
    w, h, pad = 640, 140, 30
    top = max(values) or 1
    step = (w - 2 * pad) / max(len(values) - 1, 1)
    xy = [(pad + i * step, h - pad - (h - 2 * pad) * v / top) for i, v in enumerate(values)]
    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
    dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#d8643b"/>' for x, y in xy)
    return (f'<svg role="img" aria-label="{html.escape(title)}" viewBox="0 0 {w} {h}" width="100%" '
            f'style="max-width:{w}px" xmlns="http://www.w3.org/2000/svg" font-family="sans-serif" font-size="12">'
            f'<text x="0" y="14" font-weight="bold">{html.escape(title)} (max {top:,.{0 if top >= 100 else 1}f} {html.escape(unit)}, '
            f'{len(values)} points)</text>'
            f'<polyline fill="none" stroke="#d8643b" stroke-width="2" points="{points}"/>{dots}'
            f'<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="#999"/></svg>')


def _gantt(data: dict[str, Any]) -> str:
    """The maintenance window's phases on one time axis, as inline SVG."""
    starts = event_times(report_md.timeline_text(data))
    bars = [(name, starts[a], starts[b]) for name, a, b in phases_of(starts) if a in starts and b in starts]
    if not bars:
        return ""
    t0, t1 = min(b[1] for b in bars), max(b[2] for b in bars)
    span = max((t1 - t0).total_seconds(), 1)
    w, label_w, row = 640, 190, 22
    parts = [f'<svg role="img" aria-label="Maintenance window" viewBox="0 0 {w} {row * len(bars) + 40}" width="100%" '
             f'style="max-width:{w}px" xmlns="http://www.w3.org/2000/svg" font-family="sans-serif" font-size="12">',
             f'<text x="0" y="14" font-weight="bold">Maintenance window: {report_md.duration(span)} '
             f'({t0:%H:%M:%S} to {t1:%H:%M:%S} UTC)</text>']
    for i, (name, a, b) in enumerate(bars):
        y = 24 + i * row
        x = label_w + (w - label_w - 10) * (a - t0).total_seconds() / span
        bw = max(2.0, (w - label_w - 10) * (b - a).total_seconds() / span)
        parts.append(f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end">{html.escape(name)}</text>'
                     f'<rect x="{x:.1f}" y="{y}" width="{bw:.1f}" height="{row - 6}" fill="#3b7dd8"/>'
                     f'<text x="{min(x + bw + 4, w - 60):.1f}" y="{y + 13}">'
                     f'{report_md.duration((b - a).total_seconds())}</text>')
    return "".join(parts) + "</svg>"


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
        if line.startswith("### "):
            out.append(f"<h3>{esc[4:]}</h3>")
        elif line.startswith("## "):
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
    charts = [_gantt(data)]
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
    lag = data.get("online_history") or []
    if len(lag) >= 2:
        charts.append(_line("Online catch-up: seconds behind the source", [s["seconds_behind"] for s in lag], "s"))
        charts.append(_line("Online catch-up: documents waiting", [s["documents_waiting"] for s in lag], "documents"))
    hist = data["monitoring"]
    if hist:
        charts.append(_line("Health endpoint latency", [s["health"]["ms"] or 0 for s in hist if "health" in s], "ms"))
        if not hist[-1]["host"].get("managed"):  # a managed server's are in the provider's console
            charts.append(_line("Database host CPU", [s["host"]["cpu_percent"] for s in hist], "%"))
            charts.append(_line("Database host memory", [s["host"]["memory_percent"] for s in hist], "%"))
        charts.append(_line("PostgreSQL connections", [s["database"]["connections"] for s in hist], "connections"))
    status, _ = verdict(data)
    style = ("body{font-family:sans-serif;max-width:1000px;margin:2em auto;padding:0 12px;color:#222;line-height:1.4}"
             "table{border-collapse:collapse;margin:1em 0;display:block;overflow-x:auto;max-width:100%}"
             "td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}"
             "h2{margin-top:1.6em;border-bottom:1px solid #ddd}"
             "h2:first-of-type+ul{background:#f3f7fb;border-left:6px solid #3b7dd8;padding:10px 10px 10px 28px}"
             "svg{display:block;margin:1em 0}code{word-break:break-all}"
             ".layer{display:inline-block;padding:6px 10px;margin:4px;border-radius:4px;color:#fff}"
             ".pass{background:#4a9d5b}.fail{background:#c0392b}")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>Migration final report: {status}</title><style>{style}</style></head><body>\n"
            f"{_md_to_html(md)}\n<h2>Charts</h2>\n" + "\n".join(c for c in charts if c) + "\n</body></html>\n")


def write_report(artifacts: str | Path) -> tuple[Path, Path, str]:
    data = collect(artifacts)
    md = markdown(data)
    out_md, out_html = Path(artifacts) / "final-report.md", Path(artifacts) / "final-report.html"
    for path, text in ((out_md, md + "\n"), (out_html, html_page(data, md))):
        with open_private(path) as f:
            f.write(text)
    return out_md, out_html, verdict(data)[0]
