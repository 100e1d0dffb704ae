"""A managed PostgreSQL checked over SQL with a provider-like admin login (CREATEROLE, CREATEDB, no superuser),
on a real server: what is a NO-GO (durability off, an old version, a missing extension, an admin that cannot
create), what is only a difference with the provider's hint, and monitoring that leaves the host's figures to
the provider's console. The whole runbook against a managed server: tests/test_lab_managed.py."""

from __future__ import annotations

import json

import psycopg2
import pytest
from ansible_run import ROOT, render
from psycopg2.extensions import parse_dsn

from mongo2pg.ops import managed, monitor


@pytest.fixture(scope="module")
def admin_uri(pg):
    with psycopg2.connect(pg.uri()) as conn, conn.cursor() as cur:
        cur.execute("DROP ROLE IF EXISTS cloud_admin")
        cur.execute("CREATE ROLE cloud_admin LOGIN CREATEROLE CREATEDB NOSUPERUSER PASSWORD 'cloud-pass'")
    return pg.uri(user="cloud_admin", password="cloud-pass")


def test_durability_off_is_no_go_with_the_providers_hint_and_other_settings_are_only_differences(pg, admin_uri):
    # the tests' server runs with fsync, synchronous_commit and full_page_writes off: a crash loses writes
    got = managed.check_server(admin_uri, provider="rds", min_major=10, extensions=["plpgsql"],
                               expected={"max_connections": "200", "random_page_cost": "1.1", "autovacuum": "on"})
    nogo = " | ".join(got["nogo"])
    for name in ("fsync is off", "synchronous_commit is off", "full_page_writes is off"):
        assert name in nogo
    assert "custom DB parameter group" in nogo  # where RDS changes it
    assert got["admin"] == {"user": "cloud_admin", "superuser": False, "createrole": True, "createdb": True}
    names = {d["name"] for d in got["differences"]}
    assert "autovacuum" not in names  # on, as asked
    assert all(d["hint"].startswith("in the instance's") for d in got["differences"])
    assert got["tls"]["required"] is False  # this server takes a login without TLS: reported, not refused
    neon = managed.check_server(admin_uri, provider="neon", min_major=10, expected={"max_connections": "1"})
    assert neon["differences"] and "Neon manages server settings" in neon["differences"][0]["hint"]


def test_an_old_server_a_missing_extension_and_an_admin_that_cannot_create_are_no_go(pg, admin_uri):
    got = managed.check_server(admin_uri, min_major=99, extensions=["no_such_extension"])
    nogo = " | ".join(got["nogo"])
    assert "is older than 99" in nogo and "extension no_such_extension is not offered" in nogo
    with psycopg2.connect(pg.uri()) as conn, conn.cursor() as cur:
        cur.execute("DROP ROLE IF EXISTS weak_admin")
        cur.execute("CREATE ROLE weak_admin LOGIN CREATEROLE PASSWORD 'weak-pass'")
    weak = managed.check_server(pg.uri(user="weak_admin", password="weak-pass"), min_major=10)
    assert any("lacks CREATEDB" in x for x in weak["nogo"])


def test_a_managed_snapshot_takes_what_sql_gives_and_the_window_is_judged_on_what_exists(pg, tmp_path):
    snap = monitor.snapshot(pg.uri(), managed=True, host_name="rds")
    assert snap["host"] == {"name": "rds", "managed": True, "source": "from the provider's console",
                            "cpu_percent": None, "memory_percent": None, "disk_percent": None, "disk_path": None}
    db = snap["database"]
    assert db["connections"] >= 1 and db["database_bytes"] > 0 and 0 < db["cache_hit_percent"] <= 100
    assert (db["deadlocks"], db["lock_waits"], db["replicas"], db["replica_lag_seconds"]) == (0, 0, 0, None)
    assert monitor.evaluate(snap) == []  # nothing to judge is no breach
    history = tmp_path / "history.jsonl"
    monitor.append_history(history, {**snap, "health": {"ok": True, "ms": 5.0, "status": 200}}, [])
    summary = monitor.summarize(monitor.read_history(history))
    assert summary["success"] and summary["judged"] == ["uptime"] and summary["not_measured"] == ["cpu", "memory"]
    assert summary["not_measured_source"] == "from the provider's console"


def test_a_neon_like_inventory_gives_the_app_the_pooled_url_and_every_libpq_parameter_passes_through(tmp_path):
    """The managed inventory with a provider's endpoints (Neon's shape: a -pooler host, channel_binding):
    the app's DATABASE_URL is the pooled one and DIRECT_URL the server; channel_binding reaches every URI
    and the admin login's libpq parameters untouched, and libpq reads it back."""
    given = {"pg_host": "ep-cool-darkness-123456.us-east-2.aws.neon.tech", "pg_port": 5432,
             "pg_pooled_host": "ep-cool-darkness-123456-pooler.us-east-2.aws.neon.tech", "pg_pooled_port": 5432,
             "pg_tls": {"sslmode": "verify-full", "sslrootcert": "system", "channel_binding": "require"},
             "pg_provider": "neon", "pg_admin_database": "neondb",
             "lab_pg_password": "m p@ss", "lab_app_password": "a p@ss", "lab_monitor_password": "x",
             "lab_admin_password": "adm/n"}
    urls = json.loads(render("{'app': app_cutover_database_url, 'direct': app_cutover_direct_url, "
                             "'migration': migration_pg_uri, 'admin': pg_admin_uri, 'login': pg_admin_login} | to_json",
                             tmp_path, given, inventory=ROOT / "inventories" / "managed"))
    app, direct = parse_dsn(urls["app"]), parse_dsn(urls["direct"])
    assert app["host"].endswith("-pooler.us-east-2.aws.neon.tech") and app["password"] == "a p@ss"
    assert direct["host"] == given["pg_host"] and direct["user"] == "nextcrm"
    for name in ("app", "direct", "migration", "admin"):
        dsn = parse_dsn(urls[name])
        assert dsn["channel_binding"] == "require" and dsn["sslmode"] == "verify-full", name
    assert parse_dsn(urls["admin"])["dbname"] == "neondb" and parse_dsn(urls["admin"])["password"] == "adm/n"
    assert urls["login"]["connect_params"] == {"channel_binding": "require"}
    assert urls["login"]["ca_cert"] == "system" and urls["login"]["login_user"] == "lab_admin"
