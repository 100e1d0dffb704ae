"""The whole runbook against the local lab (`make demo`), one test per scenario, in order: they share one lab
built once by the module's fixture (the first demo), and each leaves it converged for the next. A failure
names the scenario that broke."""

import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from types import SimpleNamespace

import psycopg2
import pymongo
import pytest
from ansible_run import PLAYBOOK, ROOT, playbook
from bson import ObjectId
from lab_helpers import SECRETS_ARG, failed_task, lab_secrets
from lab_helpers import api as _api
from lab_helpers import health as _health

from mongo2pg.ids import objectid_from_uuid, uuid_from_objectid
from mongo2pg.ops import backup, monitor

pytestmark = pytest.mark.lab
ARTIFACTS = ROOT / "artifacts" / "local"


def _lab_secrets() -> list[str]:
    """The passwords the self-hosted runbook passes (the provider's admin password is the managed lab's)."""
    return [v for k, v in lab_secrets().items() if k != "lab_admin_password"]


@pytest.fixture(scope="module")
def demo():
    """`make demo` from fresh (a lab kept from an interrupted earlier run may hold a tampered target)."""
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())  # the server logs in UTC (%t)
    hooks = ROOT / ".lab" / "webhook" / "received.jsonl"
    seen = len(hooks.read_text().splitlines()) if hooks.exists() else 0
    up = subprocess.run(["make", "setup"], capture_output=True, text=True, cwd=ROOT)
    assert up.returncode == 0, up.stderr
    up = subprocess.run(["./scripts/demo.sh", "-e", "migration_fresh=true"], capture_output=True, text=True, cwd=ROOT)
    assert up.returncode == 0, up.stdout[-5000:] + up.stderr[-3000:]
    return SimpleNamespace(up=up, started=started, hooks=hooks, seen=seen)


def test_demo_runs_every_phase_and_the_app_serves_its_data_from_postgresql(demo):
    up, artifacts = demo.up, ARTIFACTS
    for phase in ("GO:", "verified yes", "schema matches", "status: complete", "PASS:", "| list accounts | sql |",
                  "keep it until"):
        assert phase in up.stdout, phase
    # The app on PostgreSQL is on Prisma ORM 7, its client generated from `mongo2pg schema prisma`.
    assert _health() == {"status": "ok", "backend": "postgresql", "orm": "prisma 7.10.0", "maintenance": False}
    listed = _api("GET", "/api/accounts?limit=20")
    assert len(listed) == 20 and all({"assigned_to", "watchers"} <= set(a) for a in listed)
    assert any(a["watchers"] for a in listed)  # read through the AccountWatchers junction
    artifacts = ARTIFACTS
    timeline = (artifacts / "timeline.log").read_text()
    for event in ("application-stopped", "final-backup", "migration-start", "validation PASS", "go-live"):
        assert event in timeline, event
    # the final report in the runbook's shape, executive summary first
    report = (artifacts / "final-report.md").read_text()
    sections = ["## Executive summary", "## Timeline", "## Data migration", "### Rejected records",
                "## Validation results", "## Performance", "## Stability and resources", "## Issues and resolutions",
                "## Estimate vs actual", "## Sign-off", "## Appendix: team and contacts", "## Appendix: timeline events"]
    assert [report.index(x) for x in sections] == sorted(report.index(x) for x in sections)
    assert "- **Status: SUCCESS**" in report and "- **Maintenance window:** " in report
    assert "| maintenance window |" in report and "Maintenance window: " in (artifacts / "final-report.html").read_text()


def test_demo_sends_every_notice_in_order_and_a_down_optional_webhook_stops_nothing(demo):
    hooks, seen, artifacts = demo.hooks, demo.seen, ARTIFACTS
    timeline = (artifacts / "timeline.log").read_text()
    # the communications, in order, at the lab's webhook receiver: the status page's generic bodies and the
    # chat's Slack-style ones; the optional webhook that is down is recorded and does not stop a phase
    got = [json.loads(line) for line in hooks.read_text().splitlines()[seen:]]
    assert [(g["body"]["message"], g["body"]["status"]) for g in got if g["path"] == "/status"] == [
        ("system_offline", None), ("status_page", "maintenance"), ("back_online", None),
        ("status_page", "operational"), ("completion", None)]
    chat = [g["body"]["text"] for g in got if g["path"] == "/chat"]
    assert len(chat) == 5 and chat[0].startswith("*NextCRM (lab) is offline for maintenance until 2026-12-06 02:00 UTC*")
    assert "notify back_online: sent to 2 of 3 webhooks, failed (optional): lab-pager" in timeline
    sent = artifacts / "communications"
    assert (sent / "back_online.txt").read_text().startswith("Subject: Migration complete, NextCRM (lab) is back online")
    assert "**" not in (sent / "back_online.txt").read_text() and "# Migration complete" in (sent / "back_online.md").read_text()
    again = playbook(str(ROOT / "playbooks" / "notify.yml"), *SECRETS_ARG)
    assert again.returncode == 0, again.stdout[-3000:]
    assert json.loads(hooks.read_text().splitlines()[-1])["body"]["message"] == "completion"  # the last, again


def test_monitoring_measures_the_database_host_and_its_48_hour_job_runs_there(demo):
    started, artifacts = demo.started, ARTIFACTS
    # monitoring measured the database host: its name, the file system of PostgreSQL's data directory (the
    # lab's own tmpfs, not /), the server's log, the app's key endpoints against the runbook's targets
    rootfs = ROOT / ".lab" / "rootfs"
    snap = monitor.read_history(artifacts / "monitoring" / "monitoring-history.jsonl")[-1]
    host = snap["host"]
    assert host["name"] == "lab-db" and host["disk_path"] == "/var/lib/postgresql/17/main"
    assert host["disk_total_bytes"] == shutil.disk_usage(rootfs / "var/lib/postgresql").total == 1 << 30
    assert host["disk_total_bytes"] != shutil.disk_usage("/").total
    assert snap["database"]["log_errors"]["log_file"].startswith("/var/lib/postgresql/17/main/log/postgresql-")
    assert [(e["name"], e["max_ms"], e["ok"]) for e in snap["endpoints"]] == [
        ("list accounts", 200, True), ("account detail", 100, True), ("search", 500, True)]
    # the runbook's own statements add no ERROR to the server's log (monitoring counts them per minute)
    ours = [line for p in (rootfs / "var/lib/postgresql/17/main/log").glob("*.log")
            for line in p.read_text(errors="replace").splitlines()
            if line[:19] >= started and re.search(r"app=mongo2pg\S* .*\b(ERROR|FATAL|PANIC): ", line)]
    assert not ours, ours[:5]
    # the 48-hour job is on that host, and its line, run there once, adds a snapshot of that host
    assert (rootfs / "etc/mongo2pg/monitoring.env").stat().st_mode & 0o777 == 0o600
    job = (rootfs / "etc/cron.d/mongo2pg-monitoring").read_text().splitlines()[-1]
    command = job.split(None, 6)[6]
    on_host = rootfs / "var/lib/mongo2pg/monitoring-history.jsonl"
    before = len(monitor.read_history(on_host))
    ran = subprocess.run(["chroot", str(rootfs), "/bin/sh", "-c", command], capture_output=True, text=True)
    after = monitor.read_history(on_host)
    assert len(after) == before + 1 and after[-1]["host"]["name"] == "lab-db", (ran, (on_host.parent /
                                                                                       "monitoring.log").read_text())
    assert after[-1]["host"]["disk_total_bytes"] == 1 << 30


def test_a_migration_killed_mid_run_reruns_to_the_same_outcome(demo):
    artifacts = ARTIFACTS
    # Phase 30 again from fresh with the app stopped (as phase 20 leaves it), killed mid-migration
    # (ansible-playbook and the detached async job: a crash), then run again as an operator would, phase 30,
    # the validation gate and the deployment (go-live's change capture is on the tables the rerun made, as the
    # rollback test below needs): the outcome is the first run's.
    first = json.loads((artifacts / "migration-summary.json").read_text())["totals"]
    assert subprocess.run(["./scripts/labapp.sh", "stop"], cwd=ROOT, capture_output=True).returncode == 0
    try:
        migrate = [PLAYBOOK, "-i", str(ROOT / "inventories" / "local"), str(ROOT / "playbooks" / "30_migrate.yml"),
                   *SECRETS_ARG]
        killed = subprocess.Popen([*migrate, "-e", "migration_fresh=true"], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, cwd=ROOT, start_new_session=True,
                                  env=dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg")))
        for line in killed.stdout:
            if "TASK [Follow the migration]" in line:
                break
        time.sleep(2)
        os.killpg(killed.pid, signal.SIGKILL)
        subprocess.run(["pkill", "-9", "-f", "AnsiballZ_mongo_pg_migrate"])
        killed.wait()
        for phase in ("30_migrate.yml", "40_validate.yml", "50_deploy.yml"):
            again = playbook(str(ROOT / "playbooks" / phase), *SECRETS_ARG)
            assert again.returncode == 0, (phase, again.stdout[-5000:] + again.stderr[-3000:])
    finally:
        subprocess.run(["./scripts/labapp.sh", "start"], cwd=ROOT, capture_output=True)
    resumed = json.loads((artifacts / "migration-summary.json").read_text())["totals"]
    for key in ("source", "loaded", "rejected", "fixups", "junction_rows", "reconciled"):
        assert resumed[key] == first[key], key
    assert json.loads((artifacts / "migration-validation-report.json").read_text())["overallStatus"] == "PASS"
    assert _health()["backend"] == "postgresql"


def test_read_only_phases_and_the_ops_quick_reference_run_against_the_converged_lab(demo):
    artifacts = ARTIFACTS
    timeline = (artifacts / "timeline.log").read_text()
    # the read-only phases run in check mode against the converged lab
    for phase in ("00_preflight.yml", "40_validate.yml", "60_monitor.yml"):
        check = playbook(str(ROOT / "playbooks" / phase), "--check", *SECRETS_ARG)
        assert check.returncode == 0, (phase, check.stdout[-3000:])
    assert (artifacts / "timeline.log").read_text() == timeline  # check mode wrote nothing
    # the ops quick reference against the lab (its TLS login), read-only tags in check mode
    read_only = ["connections", "slow-queries", "db-size", "table-sizes", "idle-connections", "index-usage",
                 "replication"]
    ops = playbook(str(ROOT / "playbooks" / "ops.yml"), "--check", "--tags", ",".join(read_only),
                   *SECRETS_ARG)
    assert ops.returncode == 0 and all(f"== {t}" in ops.stdout for t in read_only), ops.stdout[-3000:]
    assert "crm_Accounts" in ops.stdout and "no replicas are connected" in ops.stdout
    ops = playbook(str(ROOT / "playbooks" / "ops.yml"), "--tags", "kill-idle,vacuum-analyze", "-e", "idle_minutes=600",
                   "-e", "confirm_kill=yes", *SECRETS_ARG)
    assert ops.returncode == 0 and "VACUUM ANALYZE done" in ops.stdout, ops.stdout[-3000:]
    # the progress sheet of the run: its last rows are every table's final figures
    sheet = (artifacts / "migration-progress.csv").read_text().splitlines()
    assert sheet[0].startswith("time,phase,table,records") and sum(",complete," in x for x in sheet) >= 29


def test_preflight_is_no_go_over_the_window_or_without_the_team(demo):
    artifacts = ARTIFACTS
    # the duration estimate from the staging run's artifacts (the lab's fixture), and a NO-GO when the
    # declared window is shorter
    est = json.loads((artifacts / "duration-estimate.json").read_text())
    assert est["staging"]["size_basis"] == "bytes" and est["fits"] is True and est["ratio"] > 0
    assert abs(est["estimate"]["total_seconds"] - 900 * est["ratio"] * 1.5) < 1  # the fixture's window: 900 s
    tight = playbook(str(ROOT / "playbooks" / "00_preflight.yml"), "--check", *SECRETS_ARG,
                     "-e", "maintenance_window_minutes=1")
    assert tight.returncode != 0 and "exceeds the maintenance window of 1.0 min" in tight.stdout, tight.stdout[-3000:]
    # preflight is NO-GO while a required team role has no name
    short = playbook(str(ROOT / "playbooks" / "00_preflight.yml"), "--check", *SECRETS_ARG,
                     "-e", json.dumps({"migration_team": {"migration_lead": {"name": "Lab Operator"}, "dba": {"name": ""}}}))
    assert short.returncode != 0 and "team roles without a name: dba, backup_dba, developer, devops, support_lead, " \
        "on_call" in short.stdout, short.stdout[-3000:]


def test_no_secret_is_written_anywhere_and_every_connection_is_verified_tls(demo):
    up, artifacts = demo.up, ARTIFACTS
    secrets = _lab_secrets()
    # the lab's passwords hold what a URI reserves: every phase above passed them through whole
    assert len(secrets) == 3 and all(set("@:/#%?& ") <= set(x) for x in secrets)
    forms = secrets + [urllib.parse.quote(x, safe="") for x in secrets]  # as typed, and inside a URI
    assert not any(f in up.stdout + up.stderr for f in forms)
    for p in artifacts.rglob("*"):
        if p.is_file():
            assert not any(f in p.read_text(errors="replace") for f in forms), p
        if "cron.d" not in p.parts:  # a cron entry must be world-readable; it holds no secret
            assert p.stat().st_mode & 0o077 == 0, p
    # nor on the database host: its server log (log_statement = ddl) and pg_stat_statements' query texts
    server_files = [p for d in ("var/lib/postgresql", "var/log/postgresql", "etc/postgresql")
                    for p in (ROOT / ".lab" / "rootfs" / d).rglob("*") if p.is_file()]
    logs = [p for p in server_files if "/log/" in str(p) and p.name.endswith(".log")]
    assert logs and any("pgss_query_texts" in p.name for p in server_files)
    for p in server_files:
        data = p.read_bytes()
        assert not any(f.encode() in data for f in forms), p
    # every TCP connection to the lab server was TLS, verified against the lab CA (sslmode=verify-full)
    authorized = [line for p in logs for line in p.read_text(errors="replace").splitlines()
                  if "connection authorized" in line and "client=127.0.0.1" in line]
    assert authorized and all("SSL enabled" in line for line in authorized), [
        line for line in authorized if "SSL enabled" not in line][:3]
    # a CA that did not sign the server's certificate is refused, in one line
    other = ROOT / ".lab" / "tls" / "other-ca.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=other",
                    "-keyout", str(other.with_suffix(".key")), "-out", str(other)], check=True, capture_output=True)
    wrong = (f"postgresql://nextcrm_migrator:{urllib.parse.quote(secrets[0], safe='')}@127.0.0.1:55432/nextcrm"
             f"?sslmode=verify-full&sslrootcert={other}")
    r = subprocess.run([str(ROOT / ".venv" / "bin" / "mongo2pg"), "status", "--pg-uri", wrong], capture_output=True,
                       text=True)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "certificate verify failed" in r.stderr and "sslrootcert" in r.stderr and secrets[0] not in r.stderr


def test_rollback_brings_every_write_since_go_live_back_to_mongodb(demo):
    artifacts, hooks = ARTIFACTS, demo.hooks
    secrets = _lab_secrets()
    # After go-live the app writes, through its API (an account created, another renamed) and in SQL as its
    # own login (watchers, a contact renamed with its opportunity links changed, a comment and a task
    # deleted, a document linked to two accounts); the default rollback (reverse-sync) takes every one back.
    created = _api("POST", "/api/accounts", {"name": "Lab account after go-live"})["id"]
    # a migrated account (the one just created has a random UUID, which may sort first)
    first = next(a["id"] for a in _api("GET", "/api/accounts?limit=5") if a["id"] != created)
    _api("PUT", f"/api/accounts/{first}", {"name": "Renamed after go-live"})
    app = psycopg2.connect(host="127.0.0.1", port=55432, dbname="nextcrm", user="nextcrm", password=secrets[1],
                           sslmode="verify-full", sslrootcert=str(ROOT / ".lab" / "tls" / "ca.crt"))
    with app.cursor() as cur:
        cur.execute('INSERT INTO "AccountWatchers" (account_id, user_id) SELECT %s, id FROM "Users" ORDER BY id '
                    "LIMIT 2 RETURNING user_id::text", (created,))
        watchers = {r[0] for r in cur.fetchall()}
        cur.execute('SELECT contact_id::text FROM "ContactsToOpportunities" GROUP BY contact_id '
                    "HAVING count(*) >= 2 ORDER BY contact_id LIMIT 1")
        (contact,) = cur.fetchone()
        cur.execute('UPDATE "crm_Contacts" SET last_name = %s WHERE id = %s', ("Renamed after go-live", contact))
        cur.execute('DELETE FROM "ContactsToOpportunities" WHERE (contact_id, opportunity_id) = (SELECT contact_id, '
                    'opportunity_id FROM "ContactsToOpportunities" WHERE contact_id = %s ORDER BY opportunity_id '
                    "LIMIT 1) RETURNING opportunity_id::text", (contact,))
        (unlinked,) = cur.fetchone()
        cur.execute('INSERT INTO "ContactsToOpportunities" (contact_id, opportunity_id) SELECT %s, id FROM '
                    '"crm_Opportunities" WHERE id NOT IN (SELECT opportunity_id FROM "ContactsToOpportunities" '
                    "WHERE contact_id = %s) AND id <> %s ORDER BY id LIMIT 1 RETURNING opportunity_id::text",
                    (contact, contact, unlinked))  # another one than the link just removed
        (linked,) = cur.fetchone()
        cur.execute('DELETE FROM "tasksComments" WHERE id = (SELECT id FROM "tasksComments" ORDER BY id LIMIT 1) '
                    "RETURNING id::text")
        (comment,) = cur.fetchone()
        cur.execute('DELETE FROM "Tasks" WHERE id = (SELECT id FROM "Tasks" WHERE id NOT IN (SELECT task FROM '
                    '"tasksComments" WHERE task IS NOT NULL) ORDER BY id LIMIT 1) RETURNING id::text')
        (task,) = cur.fetchone()
        cur.execute('INSERT INTO "Documents" (id, "__v", document_name, "document_file_mimeType", "document_file_url") '
                    "VALUES (gen_random_uuid(), 0, 'lab-contract.pdf', 'application/pdf', 'https://files.lab/c.pdf') "
                    "RETURNING id")
        (document,) = cur.fetchone()
        cur.execute('INSERT INTO "DocumentsToAccounts" (document_id, account_id) SELECT %s, id FROM "crm_Accounts" '
                    "WHERE id <> %s ORDER BY id LIMIT 2 RETURNING account_id::text", (document, created))
        document_accounts = {r[0] for r in cur.fetchall()}
    app.commit()
    app.close()
    back = playbook(str(ROOT / "playbooks" / "rollback.yml"), *SECRETS_ARG,
                    "-e", "confirm_rollback=yes")
    assert back.returncode == 0, back.stdout[-4000:]
    assert "reverse validation PASS" in back.stdout and _health()["backend"] == "mongodb"
    assert json.loads((artifacts / "rollback.json").read_text())["mode"] == "reverse-sync"
    assert json.loads((artifacts / "reverse-validation-report.json").read_text())["status"] == "PASS"
    assert "rollback-complete mode=reverse-sync" in (artifacts / "timeline.log").read_text()
    status = [json.loads(line)["body"] for line in hooks.read_text().splitlines()[-4:]]
    assert [(b.get("message"), b.get("status")) for b in status if "message" in b] == [
        ("status_page", "maintenance"), ("status_page", "operational")]  # the status page at each change
    mdb = pymongo.MongoClient("mongodb://127.0.0.1:37017/").nextcrm
    oid = {u: objectid_from_uuid(u) for u in
           [first, contact, unlinked, linked, comment, task, *watchers, *document_accounts]}
    assert _api("GET", f"/api/accounts/{oid[first]}")["name"] == "Renamed after go-live"  # the app, on MongoDB
    new = mdb.crm_Accounts.find_one({"name": "Lab account after go-live"})
    assert new and set(new["watchers"]) == {oid[u] for u in watchers}
    moved = mdb.crm_Contacts.find_one({"_id": oid[contact]})
    assert moved["last_name"] == "Renamed after go-live"
    assert oid[linked] in moved["opportunitiesIDs"] and oid[unlinked] not in moved["opportunitiesIDs"]
    assert mdb.tasksComments.find_one({"_id": oid[comment]}) is None and mdb.Tasks.find_one({"_id": oid[task]}) is None
    doc = mdb.Documents.find_one({"document_name": "lab-contract.pdf"})
    assert doc and set(doc["accountsIDs"]) == {oid[a] for a in document_accounts}


def _written_state_in_postgresql(writes: list[dict], secrets: list[str]) -> None:
    """Every document the app's users wrote (acknowledged) is in PostgreSQL as MongoDB holds it: accounts
    (present or gone, their names), contacts created, and the watcher links of each account touched, from
    both sides' arrays."""
    mdb = pymongo.MongoClient("mongodb://127.0.0.1:37017/")["nextcrm"]
    accounts = {i for w in writes if w["write"] != "contact" for i in w["ids"][:1]}
    contacts = {w["ids"][1] for w in writes if w["write"] == "contact"}
    conn = psycopg2.connect(host="127.0.0.1", port=55432, dbname="nextcrm", user="nextcrm_migrator",
                            password=secrets[0])
    with conn.cursor() as cur:
        cur.execute('SELECT id::text, name FROM "crm_Accounts" WHERE id::text = ANY(%s)',
                    ([uuid_from_objectid(a) for a in accounts],))
        in_pg = {str(objectid_from_uuid(i)): n for i, n in cur.fetchall()}
        cur.execute('SELECT count(*) FROM "crm_Contacts" WHERE id::text = ANY(%s)',
                    ([uuid_from_objectid(c) for c in contacts],))
        contacts_in_pg = cur.fetchone()[0]
        cur.execute('SELECT account_id::text, user_id::text FROM "AccountWatchers" WHERE account_id::text = ANY(%s)',
                    ([uuid_from_objectid(a) for a in accounts],))
        links_pg = {(str(objectid_from_uuid(a)), str(objectid_from_uuid(u))) for a, u in cur.fetchall()}
        cur.execute('SELECT id::text FROM "Users"')
        users_pg = {str(objectid_from_uuid(u)) for (u,) in cur.fetchall()}
    conn.close()
    in_mongo = {str(d["_id"]): d.get("name") for d in mdb.crm_Accounts.find({"_id": {"$in": [ObjectId(a) for a in accounts]}})}
    assert in_pg == in_mongo  # created, renamed and deleted alike
    # find, not count_documents: nx-27017 counts 0 for any _id filter (found here)
    assert contacts_in_pg == len(list(mdb.crm_Contacts.find({"_id": {"$in": [ObjectId(c) for c in contacts]}},
                                                            {"_id": 1}))) == len(contacts)
    links = {(a, str(u)) for a in in_mongo for u in mdb.crm_Accounts.find_one({"_id": ObjectId(a)}).get("watchers", [])}
    # every user read: nx-27017 matches no document for $in on an array field (found here)
    links |= {(str(a), str(u["_id"])) for u in mdb.Users.find({}, {"watching_accountsIDs": 1})
              for a in u.get("watching_accountsIDs") or [] if str(a) in in_mongo}
    assert links_pg == {(a, u) for a, u in links if u in users_pg}


def test_the_runbook_online_while_the_apps_users_write_cuts_over_in_a_short_window(demo):
    """make demo-online: the lab app's users write through its API (accounts created, renamed, deleted,
    contacts, watcher links added and removed from both sides) from before the capture to the maintenance
    page; every acknowledged write is then in PostgreSQL, validation passes, and the window holds only the
    cutover (its parts in cutover-window.json and the final report)."""
    artifacts, secrets = ROOT / "artifacts" / "online", _lab_secrets()
    run = subprocess.run(["make", "demo-online"], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, failed_task(run)
    writes = [json.loads(line) for line in (ROOT / ".lab" / "app" / "writes.jsonl").read_text().splitlines()]
    assert writes[-1]["write"] == "maintenance" and len(writes) > 100  # the users wrote until the maintenance page
    kinds = {w["write"] for w in writes}
    assert {"create", "rename", "contact", "watch", "unwatch"} <= kinds
    timeline = (artifacts / "timeline.log").read_text()
    events = [line.split(" ", 2)[1] for line in timeline.splitlines()]
    capture_at = events.index("online-capture-start")
    assert capture_at < events.index("online-bulk-end") < events.index("maintenance-on") \
        < events.index("migration-start") < events.index("traffic-back") < events.index("final-backup")
    # writes went on while the capture ran and the bulk read (the catch-up had work)
    capture_time = timeline.splitlines()[capture_at].split(" ")[0].replace("Z", "+00:00")
    assert sum(1 for w in writes if w["at"] > capture_time and w["write"] != "maintenance") > 20
    status = json.loads((artifacts / "online" / "online-status.json").read_text())
    assert status["state"] == "stopped" and status["documents_loaded"] > 0 and status["bulk_complete"]
    _written_state_in_postgresql([w for w in writes if w["write"] != "maintenance"], secrets)
    assert json.loads((artifacts / "migration-validation-report.json").read_text())["overallStatus"] == "PASS"
    assert json.loads((artifacts / "migration-summary.json").read_text())["totals"]["reconciled"]
    assert _health()["backend"] == "postgresql"
    window = json.loads((artifacts / "cutover-window.json").read_text())
    print(f"online window: {window['seconds']} s; parts {window['parts']}; engine {window['engine']}")
    assert window["mode"] == "online" and "final backup" not in window["parts"]
    assert set(window["engine"]["parts"]) >= {"drain", "apply", "unique keys"}
    report = (artifacts / "final-report.md").read_text()
    assert "## Maintenance window" in report and "Online catch-up before the window" in report
    assert "Online catch-up: seconds behind the source" in (artifacts / "final-report.html").read_text()
    # the service's connection strings went through its environment: none in its log, status or history
    forms = secrets + [urllib.parse.quote(x, safe="") for x in secrets]
    for p in (artifacts / "online").iterdir():
        assert not any(f in p.read_text() for f in forms), p
        assert p.stat().st_mode & 0o077 == 0, p


def test_a_corrupted_target_stops_at_the_gate_and_a_restore_rolls_back(demo):
    """From the online demo's live lab: the online runbook run again over a tampered target (its capture
    resumed, its bulk already complete) stops at the gate; a restore rolls the online run back."""
    artifacts, secrets = ROOT / "artifacts" / "online", _lab_secrets()
    conn = psycopg2.connect(host="127.0.0.1", port=55432, dbname="nextcrm", user="nextcrm_migrator",
                            password=secrets[0])
    with conn.cursor() as cur:
        cur.execute('UPDATE "crm_Accounts" SET name = name || \' (tampered)\' WHERE id = '
                    '(SELECT id FROM "crm_Accounts" ORDER BY id LIMIT 1)')
    conn.commit()
    conn.close()
    online = ROOT / "inventories" / "online"
    rerun = playbook(str(ROOT / "playbooks" / "site.yml"), *SECRETS_ARG, "-e", "migration_fresh=false",
                     inventory=online)
    assert rerun.returncode != 0 and "validation FAILED (fieldMatch)" in rerun.stdout, rerun.stdout[-4000:]
    assert "Phase 50" not in rerun.stdout
    rerun_timeline = (artifacts / "timeline.log").read_text()  # a new run, a new timeline (the last one kept)
    assert "validation FAIL (fieldMatch): stopped before deployment" in rerun_timeline
    assert "go-live" not in rerun_timeline

    # PostgreSQL itself is suspect: restore MongoDB from the verified backup instead (writes since go-live lost)
    back = playbook(str(ROOT / "playbooks" / "rollback.yml"), *SECRETS_ARG, "-e", "confirm_rollback=yes",
                    "-e", "rollback_mode=restore", "-e", "confirm_restore=yes", inventory=online)
    assert back.returncode == 0, back.stdout[-4000:]
    assert _health()["backend"] == "mongodb"
    assert json.loads((artifacts / "rollback.json").read_text())["mode"] == "restore"
    final = json.loads((artifacts / "backup-final.json").read_text())  # online: taken right after the switch
    assert backup.collection_counts("mongodb://127.0.0.1:37017/", "nextcrm") == final["collections"]
    assert (artifacts / "rollback-forensics" / "schema.sql").read_text().count("CREATE TABLE") >= 39


def test_lab_down_stops_every_lab_process(demo):
    down = subprocess.run(["make", "lab-down"], capture_output=True, text=True, cwd=ROOT)
    assert down.returncode == 0, down.stderr
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    assert str(ROOT / ".lab") not in ps  # nx-27017 runs with --data-dir .lab/mongo/data
    assert "nextcrm_standin" not in ps
    assert "postgres -D /var/lib/postgresql" not in ps and "/usr/lib/postgresql/17/bin/postgres" not in ps
