"""The whole runbook against the lab's managed PostgreSQL (`make demo-managed`): a provider's server with no host
of ours (scripts/lab-provider.sh made it: an admin login with CREATEROLE/CREATEDB and no superuser, TLS only,
PgBouncer in transaction mode for the app). One lab built by the module's fixture; the tests follow in order."""

import json
import os
import re
import subprocess
import urllib.parse
from types import SimpleNamespace

import psycopg2
import pymongo
import pytest
from ansible_run import ROOT, playbook
from lab_helpers import SECRETS_ARG, api, health, lab_secrets

from mongo2pg.ids import objectid_from_uuid

pytestmark = pytest.mark.lab
ARTIFACTS = ROOT / "artifacts" / "managed"
INVENTORY = ROOT / "inventories" / "managed"
CA = str(ROOT / ".lab" / "tls" / "ca.crt")


def _managed(*args: str):
    return playbook(*args, *SECRETS_ARG, inventory=INVENTORY)


def _provider_sql(sql: str, db: str = "postgres") -> str:
    """As the provider itself (its superuser on lab-db's socket): what a customer cannot do."""
    r = subprocess.run(["chroot", str(ROOT / ".lab" / "rootfs"), "runuser", "-u", "postgres", "--", "psql", "-XAtq",
                        "-p", "55432", "-d", db, "-c", sql], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def _uri(user: str, password: str, port: int) -> str:
    return (f"postgresql://{user}:{urllib.parse.quote(password, safe='')}@127.0.0.1:{port}/nextcrm"
            f"?sslmode=verify-full&sslrootcert={urllib.parse.quote(CA, safe='')}")


@pytest.fixture(scope="module")
def demo():
    """`make demo-managed` from fresh; the self-hosted lab (test_lab) goes down first by itself."""
    up = subprocess.run(["make", "setup"], capture_output=True, text=True, cwd=ROOT)
    assert up.returncode == 0, up.stderr
    up = subprocess.run(["./scripts/demo.sh", "-e", "migration_fresh=true"], capture_output=True, text=True, cwd=ROOT,
                        env={**os.environ, "LAB_PROFILE": "managed"})
    assert up.returncode == 0, up.stdout[-5000:] + up.stderr[-3000:]
    return SimpleNamespace(up=up)


def _flat(stdout: str) -> str:
    """Ansible's output with its line wrapping and YAML quote doubling undone."""
    return " ".join(stdout.split()).replace("''", "'")


def test_the_runbook_runs_against_a_managed_server_with_no_task_on_a_database_host(demo):
    out = _flat(demo.up.stdout)
    for phase in ("GO:", "the target is managed: its storage is shown in the console of the provider", "admin login lab_admin (superuser False, createrole True",
                  "required by the server", "schema matches", "status: complete", "PASS:", "keep it until"):
        assert phase in out, phase
    # every task ran on the controller: the recap names no other host, and no database host was provisioned
    hosts = set(re.findall(r"^(\S+)\s+: ok=", demo.up.stdout, re.M))
    assert hosts == {"localhost"}, hosts
    assert "Phase 10: provision PostgreSQL" in out and "[lab-db]" not in out  # no task result of that host
    # the settings the provider runs differently are reported with where to change them, not refused
    server = json.loads((ARTIFACTS / "managed-target.json").read_text())
    assert server["admin"] == {"user": "lab_admin", "superuser": False, "createrole": True, "createdb": True}
    assert server["durability"] == {"fsync": "on", "full_page_writes": "on", "synchronous_commit": "on"}
    assert {"max_connections", "random_page_cost"} <= {d["name"] for d in server["differences"]}
    assert "max_connections is 100 here, 200 in the runbook: change it in the provider's console" in out
    # the roles and the database were made by the provider's admin, without superuser anywhere
    roles = _provider_sql("SELECT string_agg(rolname || ':' || rolsuper || rolcreaterole || rolcreatedb, ' ' "
                          "ORDER BY rolname) FROM pg_roles WHERE rolname LIKE 'nextcrm%'")
    assert roles == " ".join(f"{r}:falsefalsefalse" for r in ("nextcrm", "nextcrm_migrator", "nextcrm_monitor")), roles
    assert _provider_sql("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'nextcrm'") == "nextcrm"
    # the app: through the pooler as DATABASE_URL, the server itself as DIRECT_URL; serving from PostgreSQL
    env = dict(line.split("=", 1) for line in (ROOT / ".lab" / "app" / "app.env").read_text().splitlines() if line)
    assert urllib.parse.urlsplit(env["DATABASE_URL"]).port == 56432
    assert urllib.parse.urlsplit(env["DIRECT_URL"]).port == 55432
    assert health()["backend"] == "postgresql" and len(api("GET", "/api/accounts?limit=5")) == 5
    # monitoring without a host: SQL figures, the host's from the provider's console, judged on what exists
    history = [json.loads(x) for x in (ARTIFACTS / "monitoring" / "monitoring-history.jsonl").read_text().splitlines()]
    assert history[-1]["host"]["source"] == "from the provider's console"
    assert history[-1]["host"]["cpu_percent"] is None and history[-1]["database"]["connections"] > 0
    report = (ARTIFACTS / "final-report.md").read_text()
    assert "CPU, memory and disk: from the provider's console" in report and "- **Status: SUCCESS**" in report
    assert (ARTIFACTS / "monitoring" / "cron.d" / "mongo2pg-monitoring").exists()  # the 48-hour job, on the controller


def test_no_secret_in_the_run_and_the_provider_never_sees_a_password(demo):
    secrets = list(lab_secrets().values())
    forms = secrets + [urllib.parse.quote(x, safe="") for x in secrets]
    assert not any(f in demo.up.stdout + demo.up.stderr for f in forms)
    for p in ARTIFACTS.rglob("*"):
        if p.is_file():
            assert not any(f in p.read_text(errors="replace") for f in forms), p
    # users are created with their SCRAM verifier: no password reaches the server's statements
    texts = _provider_sql("SELECT string_agg(query, ' ') FROM pg_stat_statements", "nextcrm")
    assert "CREATE" in texts and not any(f in texts for f in forms)
    log = (ROOT / ".lab" / "rootfs" / "var" / "log" / "postgresql" / "postgresql-17-provider.log").read_text()
    assert not any(f in log for f in forms)


def test_the_migration_handed_the_pooled_url_stops_in_one_line_naming_the_direct_one(demo):
    pooled = _uri("nextcrm_migrator", lab_secrets()["lab_pg_password"], 56432)
    r = subprocess.run([str(ROOT / ".venv" / "bin" / "mongo2pg"), "migrate", "--pg-uri", pooled, "--mongo-uri",
                        "mongodb://127.0.0.1:37017/", "--db", "nextcrm"], capture_output=True, text=True)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "transaction" in r.stderr and "direct" in r.stderr and lab_secrets()["lab_pg_password"] not in r.stderr


def test_a_provider_with_durability_off_is_no_go_naming_the_setting_and_where_to_change_it(demo):
    _provider_sql("ALTER SYSTEM SET synchronous_commit = off")
    _provider_sql("SELECT pg_reload_conf()")
    try:
        r = _managed(str(ROOT / "playbooks" / "10_prepare.yml"), "--tags", "provision", "-e", "pg_provider=rds")
    finally:
        _provider_sql("ALTER SYSTEM RESET synchronous_commit")
        _provider_sql("SELECT pg_reload_conf()")
    assert r.returncode != 0
    out = _flat(r.stdout)
    assert "NO-GO: synchronous_commit is off: acknowledged writes can be lost in a crash" in out
    assert "custom DB parameter group" in out  # the RDS hint
    again = _managed(str(ROOT / "playbooks" / "10_prepare.yml"), "--tags", "provision")
    assert again.returncode == 0, again.stdout[-3000:]


def test_rollback_on_the_managed_server_brings_a_write_since_go_live_back_to_mongodb(demo):
    created = api("POST", "/api/accounts", {"name": "Managed account after go-live"})["id"]
    first = next(a["id"] for a in api("GET", "/api/accounts?limit=5") if a["id"] != created)
    api("PUT", f"/api/accounts/{first}", {"name": "Renamed on the managed server"})
    back = _managed(str(ROOT / "playbooks" / "rollback.yml"), "-e", "confirm_rollback=yes")
    assert back.returncode == 0, back.stdout[-4000:]
    assert "reverse validation PASS" in _flat(back.stdout) and health()["backend"] == "mongodb"
    assert set(re.findall(r"^(\S+)\s+: ok=", back.stdout, re.M)) == {"localhost"}
    counts = json.loads((ARTIFACTS / "rollback-forensics" / "row-counts.json").read_text())
    assert any(c["table"] == "crm_Accounts" for c in counts)
    mdb = pymongo.MongoClient("mongodb://127.0.0.1:37017/").nextcrm
    assert mdb.crm_Accounts.find_one({"name": "Managed account after go-live"})
    assert mdb.crm_Accounts.find_one({"_id": objectid_from_uuid(first)})["name"] == "Renamed on the managed server"
    # the app's pooled URL is gone with the switch back; the provider's server is left as it was
    assert "56432" not in (ROOT / ".lab" / "app" / "app.env").read_text()
    with psycopg2.connect(_uri("nextcrm", lab_secrets()["lab_app_password"], 55432)) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM \"crm_Accounts\"")
        assert cur.fetchone()[0] > 0


def test_lab_down_stops_the_provider_and_its_pooler(demo):
    down = subprocess.run(["make", "lab-down"], capture_output=True, text=True, cwd=ROOT)
    assert down.returncode == 0, down.stderr
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    assert "pgbouncer-provider" not in ps and "/usr/lib/postgresql/17/bin/postgres" not in ps and "nextcrm_standin" not in ps
