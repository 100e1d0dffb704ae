"""The validation report: the runbook's layers as PASS/FAIL with their figures, as JSON
(migration-validation-report.json) and a Markdown summary beside it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..files import open_private
from ..redact import redact_uri

MAX_LISTED = 200  # per list in the report; counts are always complete


@dataclass
class TableCheck:
    table: str
    source: int = 0
    target: int = 0
    rejected: int = 0
    rows_checked: int = 0
    fields_checked: int = 0
    fields_mismatched: int = 0
    lost: int = 0
    extra: int = 0
    unexplained_rejects: int = 0
    # Every record found lost, extra, logged-but-present or differing (str(_id)): what a baseline hands to the
    # validation at cutover to check again (validation/since.py); the report lists only the first few.
    flagged: set[str] = field(default_factory=set)


def new_lists() -> dict[str, Any]:
    """The report's lists of examples, each capped at MAX_LISTED entries."""
    return {"fieldMismatches": [], "typeErrors": [], "typeErrorCount": 0, "orphanedRecords": [],
            "lostRecords": [], "extraRecords": [], "junctionProblems": []}


@dataclass
class Findings:
    """What a validation run found, everything the report is built from."""

    checks: list[TableCheck]  # one per table
    lists: dict[str, Any]  # the examples (new_lists)
    orphans: int  # rows whose foreign key points nowhere
    broken: list[dict[str, Any]]  # foreign keys with orphans
    junctions: dict[str, dict[str, Any]]  # per junction: rows, expected, missing, extra
    db_type_errors: int  # values out of their type's range, as PostgreSQL counts them
    schema_diffs: list[str]
    seconds: float
    log: Any  # the error log's account (issues.ErrorLogAccount)
    source_label: str


def build_report(opts, mapping, found: Findings) -> dict[str, Any]:
    checks, lists, junctions, log = found.checks, found.lists, found.junctions, found.log
    orphans, broken, schema_diffs, seconds = found.orphans, found.broken, found.schema_diffs, found.seconds
    fields = sum(c.fields_checked for c in checks)
    mism = sum(c.fields_mismatched for c in checks)
    match_pct = 100.0 * (fields - mism) / fields if fields else 100.0
    rows = sum(c.rows_checked for c in checks)
    count_ok = all(c.lost == 0 and c.extra == 0 and c.unexplained_rejects == 0 and c.source == c.target + c.rejected
                   for c in checks)
    field_ok = (mism == 0) if opts.strict else match_pct >= opts.min_match
    field_ok = field_ok and match_pct >= opts.min_match
    junction_ok = all(j["missing"] == 0 and j["extra"] == 0 for j in junctions.values())
    ri_ok = orphans == 0 and junction_ok
    type_count = lists["typeErrorCount"] + found.db_type_errors
    type_ok = type_count == 0
    schema_ok = not schema_diffs
    layers = {"rowCount": count_ok, "fieldMatch": field_ok, "referentialIntegrity": ri_ok, "dataTypes": type_ok,
              "schema": schema_ok}
    status = "PASS" if all(layers.values()) else "FAIL"
    return {
        "timestamp": datetime.now(UTC).isoformat(),
        "overallStatus": status,
        "failedLayers": [k for k, ok in layers.items() if not ok],
        "source": found.source_label, "target": redact_uri(opts.pg_uri), "mapping": mapping.name,
        "mode": f"sample of {opts.sample} per table (seed {opts.seed})" if opts.sample else "every row",
        "seconds": round(seconds, 2), "rowsChecked": rows,
        "rowsPerSecond": round(rows / seconds) if seconds else None,
        "errorLog": {"path": opts.error_log, "present": log.present,
                     "rejectedRecords": sum(len(v) for v in log.rejected.values())},
        "summary": {"totalTables": len(checks) + len(junctions), "tablesValidated": len(checks),
                    "tablesPassed": sum(1 for c in checks if _table_ok(c)),
                    "tablesFailed": sum(1 for c in checks if not _table_ok(c)),
                    "totalRecords": sum(c.source for c in checks), "recordsValidated": rows,
                    "recordsMatched": rows - len({(m["tableName"], m["mongoId"]) for m in lists["fieldMismatches"]}),
                    "fieldsCompared": fields, "fieldsMismatched": mism, "matchPercentage": round(match_pct, 4)},
        "rowCountValidation": {"status": _pf(count_ok), "discrepancies": [
            {"tableName": c.table, "mongoCount": c.source, "postgresCount": c.target, "rejected": c.rejected,
             "difference": c.target + c.rejected - c.source, "lost": c.lost, "extra": c.extra}
            for c in checks if not _table_ok(c)], "lostRecords": lists["lostRecords"],
            "extraRecords": lists["extraRecords"]},
        "sampleRecordValidation": {"status": _pf(field_ok), "fieldMismatches": lists["fieldMismatches"],
                                   "matchPercentage": round(match_pct, 4), "strict": opts.strict,
                                   "minMatch": opts.min_match},
        "referentialIntegrityValidation": {"status": _pf(ri_ok), "orphanedRecords": lists["orphanedRecords"],
                                           "brokenForeignKeys": broken, "junctions": junctions,
                                           "junctionProblems": lists["junctionProblems"]},
        "dataTypeValidation": {"status": _pf(type_ok), "typeErrorCount": type_count,
                               "typeErrors": lists["typeErrors"]},
        "schemaValidation": {"status": _pf(schema_ok), "differences": schema_diffs},
        "detailedResults": [
            {"tableName": c.table, "rowCount": {"mongoCount": c.source, "postgresCount": c.target,
                                                "rejected": c.rejected, "match": c.source == c.target + c.rejected},
             "sampleValidation": {"sampleSize": c.rows_checked, "fieldsCompared": c.fields_checked,
                                  "mismatched": c.fields_mismatched,
                                  "matchPercentage": round(100.0 * (c.fields_checked - c.fields_mismatched)
                                                           / c.fields_checked, 4) if c.fields_checked else 100.0},
             "status": _pf(_table_ok(c))} for c in checks],
    }


def _table_ok(c: TableCheck) -> bool:
    return (c.lost == 0 and c.extra == 0 and c.unexplained_rejects == 0 and c.fields_mismatched == 0
            and c.source == c.target + c.rejected)


def _pf(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def write_report(path: Path, report: dict[str, Any]) -> None:
    for target, text in ((path, json.dumps(report, indent=1, default=str)),
                         (path.with_suffix(".md"), markdown_summary(report))):
        with open_private(target) as f:
            f.write(text)


def markdown_summary(r: dict[str, Any]) -> str:
    s = r["summary"]
    lines = [f"# Migration validation: {r['overallStatus']}", "",
             f"{r['timestamp']} - {r['mode']} - {r['rowsChecked']:,} rows checked in {r['seconds']}s "
             f"({r['rowsPerSecond'] or 0:,} rows/s)", "", "| layer | status | figures |", "|---|---|---|",
             f"| Row counts | {r['rowCountValidation']['status']} | {s['totalRecords']:,} source records; "
             f"{len(r['rowCountValidation']['discrepancies'])} tables with discrepancies |",
             f"| Field-level match | {r['sampleRecordValidation']['status']} | {s['fieldsCompared']:,} fields, "
             f"{s['fieldsMismatched']:,} mismatched ({s['matchPercentage']}%) |",
             f"| Referential integrity | {r['referentialIntegrityValidation']['status']} | "
             f"{sum(b['orphanedCount'] for b in r['referentialIntegrityValidation']['brokenForeignKeys'])} orphans; "
             f"{len(r['referentialIntegrityValidation']['junctionProblems'])} junction problems listed |",
             f"| Type conversion | {r['dataTypeValidation']['status']} | {r['dataTypeValidation']['typeErrorCount']} "
             "type errors |",
             f"| Schema | {r['schemaValidation']['status']} | {len(r['schemaValidation']['differences'])} differences |",
             "", "| table | source | target | rejected | fields checked | mismatched | status |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for d in r["detailedResults"]:
        lines.append(f"| {d['tableName']} | {d['rowCount']['mongoCount']:,} | {d['rowCount']['postgresCount']:,} | "
                     f"{d['rowCount']['rejected']:,} | {d['sampleValidation']['fieldsCompared']:,} | "
                     f"{d['sampleValidation']['mismatched']:,} | {d['status']} |")
    for title, key, sub in (("Field mismatches", "sampleRecordValidation", "fieldMismatches"),
                            ("Orphaned records", "referentialIntegrityValidation", "orphanedRecords"),
                            ("Junction problems", "referentialIntegrityValidation", "junctionProblems"),
                            ("Lost records", "rowCountValidation", "lostRecords"),
                            ("Extra records", "rowCountValidation", "extraRecords")):
        items = r[key][sub]
        if items:
            lines += ["", f"## {title} (first {min(len(items), 20)})", ""]
            lines += [f"- `{json.dumps(i, default=str)}`" for i in items[:20]]
    if r["schemaValidation"]["differences"]:
        lines += ["", "## Schema differences", ""] + [f"- {d}" for d in r["schemaValidation"]["differences"]]
    return "\n".join(lines) + "\n"
