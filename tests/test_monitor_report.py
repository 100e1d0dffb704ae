"""Monitoring snapshots (real PostgreSQL, a real HTTP health endpoint) and the final report."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg2
import pytest
from servers import PgServer, free_port

from mongo2pg.cli import main as cli
from mongo2pg.ops import monitor


class _Health(BaseHTTPRequestHandler):
    """/health; and an app's key endpoints: a list, a detail by the listed id, a slow search."""

    def do_GET(self):  # noqa: N802 - http.server's naming
        answers = {"/api/items": [{"id": "a1"}], "/api/items/a1": {"id": "a1"}, "/api/search": []}
        path = self.path.split("?")[0]
        if path == "/api/search":
            time.sleep(0.25)
        known = path == "/health" or path in answers
        self.send_response(200 if known else 404)
        self.end_headers()
        self.wfile.write(json.dumps(answers.get(path, {"status": "ok"})).encode())

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def health_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/health"
    server.shutdown()


def test_snapshot_reads_every_figure_and_breaches_are_reported_and_kept(pg, pg_db, health_url, tmp_path, capsys):
    history = tmp_path / "history.jsonl"
    assert cli(["monitor", "snapshot", "--pg-uri", pg_db, "--health-url", health_url, "--history", str(history),
                "--threshold", "cpu_percent=100", "--threshold", "memory_percent=100",
                "--threshold", "disk_percent=100"]) == 0
    snap = monitor.read_history(history)[0]
    assert snap["health"]["ok"] and snap["health"]["status"] == 200 and snap["health"]["ms"] > 0
    db = snap["database"]
    assert db["max_connections"] > 0 and db["connections"] >= 1 and db["database_bytes"] > 0
    assert 0 <= snap["host"]["cpu_percent"] <= 100 and 0 < snap["host"]["memory_percent"] < 100
    assert snap["breaches"] == [] and history.stat().st_mode & 0o777 == 0o600
    assert pg.password not in history.read_text()

    # a health endpoint that is down, and a threshold the database exceeds: both reported, exit 1
    dead = f"http://127.0.0.1:{free_port()}/health"
    code = cli(["monitor", "snapshot", "--pg-uri", pg_db, "--health-url", dead, "--history", str(history),
                "--threshold", "connections_percent=0"])
    out = capsys.readouterr().out
    assert code == 1 and "BREACH: health endpoint: status None" in out and "BREACH: connections_percent" in out
    window = monitor.summarize(monitor.read_history(history))
    assert window["samples"] == 2 and window["uptime_percent"] == 50.0 and not window["success"]
    assert "uptime 50.0% < 99.9%" in window["reasons"]


# The postgresql role's logging (roles/postgresql/tasks/tuning.yml): a collector, files under log/.
ROLE_LOGGING = {"logging_collector": "on", "log_directory": "log", "log_filename": "postgresql-%Y-%m-%d_%H%M%S.log",
                "log_line_prefix": "%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h "}


@pytest.fixture()
def data_disk():
    """A file system of its own for a server's data directory, as a production server's data disk (outside
    pytest's private folder: the server's own user must reach it)."""
    mount = Path(tempfile.mkdtemp(prefix="m2p-data-disk-"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300M,mode=0755", "m2p-data-disk", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)
    mount.rmdir()


def test_snapshot_judges_the_servers_own_log_its_data_directory_and_the_key_endpoints(tmp_path, data_disk, health_url,
                                                                                   capsys):
    server = PgServer(settings=ROLE_LOGGING, parent=data_disk).start()
    try:
        admin = psycopg2.connect(server.uri())
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute("CREATE ROLE watcher LOGIN PASSWORD 'w-pass' IN ROLE pg_monitor")
            for _ in range(12):  # the application's failing statements, as the server logs them
                try:
                    cur.execute("SELECT * FROM no_such_table")
                except psycopg2.Error:
                    pass
        admin.close()
        with pytest.raises(psycopg2.OperationalError):  # a FATAL: a login with a wrong password
            psycopg2.connect(server.uri(user="watcher", password="wrong"))
        endpoints = tmp_path / "endpoints.json"
        endpoints.write_text(json.dumps([
            {"name": "list", "path": "/api/items", "max_ms": 200, "capture": {"item": "0.id"}},
            {"name": "detail", "path": "/api/items/{item}", "max_ms": 100},
            {"name": "search", "path": "/api/search?q=x", "max_ms": 100},
            {"name": "gone", "path": "/api/nothing", "max_ms": 100}]))
        history = tmp_path / "history.jsonl"
        args = ["monitor", "snapshot", "--pg-uri", server.uri("postgres", "watcher", "w-pass"), "--history",
                str(history), "--host-name", "db-1", "--app-url", health_url.rsplit("/", 1)[0], "--endpoints",
                str(endpoints), "--log-minutes", "2", "--threshold", "cpu_percent=100", "--threshold",
                "memory_percent=100", "--threshold", "disk_percent=100"]
        deadline = time.monotonic() + 10  # the collector writes the log a moment after the statements
        while True:
            code = cli(args)
            snap = monitor.read_history(history)[-1]
            if snap["database"]["log_errors"]["error"] >= 12 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        out = capsys.readouterr().out
        data_fs_total = shutil.disk_usage(server.datadir).total
    finally:
        server.stop()
    errors = snap["database"]["log_errors"]
    # the server's current log file, as it reports it; 12 ERRORs and the FATAL, per minute over 2 minutes
    assert errors["log_file"].startswith(str(server.datadir / "log" / "postgresql-"))
    assert errors["error"] == 12 and errors["fatal"] == 1 and errors["per_minute"] == 6.5
    # the disk measured is the data directory's file system, named by the server (SHOW data_directory)
    host = snap["host"]
    assert host["name"] == "db-1" and host["disk_path"] == snap["database"]["data_directory"] == str(server.datadir)
    assert host["disk_total_bytes"] == data_fs_total == 300 << 20  # the data disk's, not the root file system's
    # the key endpoints in order, the detail found by the list's id; the slow one and the missing one breach
    by_name = {e["name"]: e for e in snap["endpoints"]}
    assert [e["name"] for e in snap["endpoints"]] == ["list", "detail", "search", "gone"]
    assert by_name["detail"]["target"] == "GET /api/items/a1" and by_name["detail"]["ok"]
    assert by_name["search"]["ms"] >= 250
    assert code == 1 and snap["breaches"] == [
        f"PostgreSQL log: 6.5 errors/min > 5 (last 2 min of {errors['log_file']})",
        f"endpoint search: {by_name['search']['ms']:g} ms > 100 ms", "endpoint gone: status 404, expected 200"]
    assert "db-1:" in out and f"of {server.datadir}" in out and "endpoint detail: 200" in out


def test_unknown_threshold_is_a_configuration_error(pg_db, tmp_path, capsys):
    code = cli(["monitor", "snapshot", "--pg-uri", pg_db, "--history", str(tmp_path / "h"), "--threshold", "cpu=5"])
    assert code == 2 and "use KEY=VALUE with KEY one of" in capsys.readouterr().err


def _migrate_and_validate(pg_db, dump, art):
    for args in (["migrate", "--dump", str(dump), "--pg-uri", pg_db, "--quiet", "--error-log",
                  str(art / "migration-errors.log"), "--checkpoint-file", str(art / "cp.json"),
                  "--summary-file", str(art / "migration-summary.json")],
                 ["validate", "--dump", str(dump), "--pg-uri", pg_db, "--error-log", str(art / "migration-errors.log"),
                  "--report", str(art / "migration-validation-report.json")]):
        r = subprocess.run([sys.executable, "-m", "mongo2pg.cli", *args], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]


def test_final_report_is_written_from_the_artifacts_and_renders_offline(pg_db, clean_dump, health_url, tmp_path):
    art = tmp_path / "artifacts"
    art.mkdir()
    _migrate_and_validate(pg_db, clean_dump, art)
    (art / "timeline.log").write_text("2026-11-24T10:00:00Z application-stopped\n2026-11-24T10:05:00Z go-live\n")
    (art / "smoke-test-results.json").write_text(json.dumps({"results": [
        {"kind": "http", "name": "list accounts", "target": "GET /api/accounts", "ms": 12.5, "max_ms": 100,
         "ok": True, "slow": False, "error": None}], "failed": [], "slow": []}))
    (art / "monitoring").mkdir()
    snap = monitor.snapshot(pg_db, health_url)
    monitor.append_history(art / "monitoring" / "monitoring-history.jsonl", snap, [])

    # A table with no documents (or loaded within a millisecond) has no rate: the report still renders.
    summary = json.loads((art / "migration-summary.json").read_text())
    summary["tables"][0].update(seconds=0.0, records_per_second=None)
    (art / "migration-summary.json").write_text(json.dumps(summary))

    assert cli(["report", "--artifacts", str(art)]) == 0
    md = (art / "final-report.md").read_text()
    page = (art / "final-report.html").read_text()
    summary = json.loads((art / "migration-summary.json").read_text())
    assert md.index("## Executive summary") < md.index("## Timeline") < md.index("## Data migration")
    assert "- **Status: SUCCESS**" in md and f"of {summary['totals']['source']:,} source records migrated" in md
    for section in ("## Validation results", "## Performance", "## Stability and resources", "## Issues and resolutions",
                    "## Sign-off", "### Rejected records", "## Appendix: timeline events"):
        assert section in md, section
    assert "- **Maintenance window:** 5 min 00 s, from the application stopped (2026-11-24T10:00:00Z)" in md
    assert "| Field-level match | PASS |" in md and "| list accounts | http | 12.5 | 100 | ok |" in md
    assert page.count("<svg") >= 4 and "<script" not in page
    # self-contained: no stylesheet, image or font fetched from anywhere
    assert not re.search(r'(src|href)=["\']?(https?:)?//', page)
    assert (art / "final-report.html").stat().st_mode & 0o777 == 0o600

    # a failed gate makes the same report say so
    report = json.loads((art / "migration-validation-report.json").read_text())
    report["overallStatus"] = "FAIL"
    (art / "migration-validation-report.json").write_text(json.dumps(report))
    assert cli(["report", "--artifacts", str(art)]) == 0
    assert "- **Status: NOT COMPLETE** (validation did not pass)" in (art / "final-report.md").read_text()


def test_the_report_says_which_rollback_ran_and_only_for_its_own_run(tmp_path):
    from mongo2pg.ops.report import collect, markdown

    (tmp_path / "rollback.json").write_text(json.dumps({
        "mode": "reverse-sync", "completed_at": "2026-12-01T11:00:00Z", "reverse_sync": {"changes": 12},
        "reverse_validation": "PASS", "restored_from": None}))
    (tmp_path / "timeline.log").write_text("2026-12-01T10:00:00Z go-live\n")
    assert "## Rollback" not in markdown(collect(tmp_path))  # an earlier run's rollback
    with open(tmp_path / "timeline.log", "a") as f:
        f.write("2026-12-01T11:00:00Z rollback-complete mode=reverse-sync\n")
    assert ("every write since go-live applied back to MongoDB (reverse-sync: 12 changes), reverse validation PASS"
            in markdown(collect(tmp_path)))


def test_the_progress_sheet_is_charted_as_records_loaded_over_the_run(tmp_path):
    from mongo2pg.ops.report import collect, html_page, loaded_over_time, markdown

    (tmp_path / "migration-progress.csv").write_text(
        "time,phase,table,records,total,percent_complete,records_per_second,errors\n"
        "2026-12-01T10:00:00Z,load,A,0,100,0.0,0,0\n2026-12-01T10:00:10Z,load,B,50,50,100.0,5,1\n"
        "2026-12-01T10:00:20Z,load,A,100,100,100.0,5,0\n2026-12-01T10:00:30Z,complete,A,100,100,100.0,5,0\n")
    data = collect(tmp_path)
    assert loaded_over_time(data["progress"]) == [0, 50, 150]
    assert "Records loaded over the run (progress sheet) (max 150 records, 3 points)" in html_page(data, markdown(data))


def test_the_report_lists_the_team_and_the_escalation_path(tmp_path):
    from mongo2pg.ops.report import collect, markdown

    (tmp_path / "team.json").write_text(json.dumps({"roles": {
        "migration_lead": {"name": "Ada", "phone": "+1 555 0100", "email": "ada@example.com", "hours": "24/7"},
        "on_call": {"name": "", "phone": "", "email": "", "hours": "On-call"}},
        "escalation_path": ["On-duty engineer -> Migration Lead", "Migration Lead -> DBA + DevOps"]}))
    md = markdown(collect(tmp_path))
    assert "| Migration Lead | Ada | +1 555 0100 | ada@example.com | 24/7 |" in md
    assert "| On-call | (unnamed) | - | - | On-call |" in md
    assert "- 2. Migration Lead -> DBA + DevOps" in md


def test_duration_estimate_from_staging_and_the_report_sets_it_beside_the_actual(tmp_path):
    from mongo2pg.ops.estimate import estimate
    from mongo2pg.ops.report import collect, markdown

    staging = tmp_path / "staging"
    staging.mkdir()
    (staging / "timeline.log").write_text(
        "2026-11-20T22:10:00Z application-stopped\n2026-11-20T22:14:00Z final-backup\n"
        "2026-11-20T22:14:00Z migration-start\n2026-11-20T22:20:00Z migration-end status=complete\n"
        "2026-11-20T22:22:00Z validation PASS\n2026-11-20T22:25:00Z go-live\n")
    (staging / "duration-estimate.json").write_text(json.dumps({"this_run": {"source_bytes": 1000}}))
    # production is 4x staging's bytes: every phase x 4 x 1.5; a 15-minute staging window -> 90 minutes
    e = estimate(500, 4000, str(staging), 60)
    assert e["ratio"] == 4.0 and e["estimate"]["phases_seconds"]["migration"] == 360 * 6
    assert e["estimate"]["total_seconds"] == 900 * 6 and e["fits"] is False
    assert estimate(500, 4000, str(staging), 120)["fits"] is True
    run = tmp_path / "run"
    run.mkdir()
    (run / "duration-estimate.json").write_text(json.dumps(e))
    (run / "timeline.log").write_text(
        "2026-12-01T22:00:00Z application-stopped\n2026-12-01T22:20:00Z final-backup\n"
        "2026-12-01T22:20:00Z migration-start\n2026-12-01T22:50:00Z migration-end status=complete\n")
    md = markdown(collect(run))
    assert "| migration | 36.0 | 30.0 |" in md and "| maintenance window | 90.0 | - |" in md


def test_rejected_records_are_grouped_by_reason_with_example_ids(tmp_path):
    from mongo2pg.ops.report import collect, markdown

    recs = [{"severity": "reject", "table": "crm_Leads", "_id": f"65a1b2c3d4e5f6071829{i:04x}", "uuid": None,
             "reason": "enum_invalid", "field": "status", "message": "not a value"} for i in range(5)]
    recs += [{"severity": "reject", "table": "Tasks", "_id": "65a1b2c3d4e5f60718290fff", "uuid": None,
              "reason": "missing_required", "field": "title", "message": "missing"},
             {"severity": "fixup", "table": "Tasks", "_id": "65a1b2c3d4e5f60718290ffe", "uuid": None,
              "reason": "junction_bad_id", "field": "documentIDs", "message": "link dropped"}]
    (tmp_path / "migration-errors.log").write_text("".join(json.dumps(r) + "\n" for r in recs))
    md = markdown(collect(tmp_path))
    assert ("| enum_invalid | 5 | crm_Leads | crm_Leads 65a1b2c3d4e5f60718290000; crm_Leads 65a1b2c3d4e5f60718290001; "
            "crm_Leads 65a1b2c3d4e5f60718290002 |") in md
    assert "| missing_required | 1 | Tasks | Tasks 65a1b2c3d4e5f60718290fff |" in md
    assert "junction_bad_id" not in md  # a fix-up kept its record: not a rejected one


def test_the_monitoring_hosts_engine_files_are_enough_for_the_snapshot_command(tmp_path, pg):
    """The role copies only monitoring_engine_files to the database host (psycopg2, no pymongo or YAML there):
    `mongo2pg monitor snapshot` must run from exactly those files. A module the CLI newly imports and the
    list lacks failed the cron job (ImportError) with only Molecule's snapshot count to tell."""
    import yaml
    from ansible_run import ROOT

    listed = yaml.safe_load((ROOT / "roles" / "monitoring" / "defaults" / "main.yml").read_text())[
        "monitoring_engine_files"]
    for rel in listed:
        dest = tmp_path / "mongo2pg" / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "mongo2pg" / rel, dest)
    r = subprocess.run([sys.executable, "-m", "mongo2pg", "monitor", "snapshot", "--pg-uri", pg.uri(), "--history",
                        str(tmp_path / "h.jsonl"), "--disk-path", str(tmp_path)], capture_output=True, text=True,
                       cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path)})
    assert "Error" not in r.stderr and r.returncode in (0, 1), r.stderr[-2000:]
    assert json.loads((tmp_path / "h.jsonl").read_text().splitlines()[-1])["host"]["name"]
