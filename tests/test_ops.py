"""playbooks/ops.yml, the runbook's Appendix B as tags, against a real PostgreSQL (pg_stat_statements
loaded): each read-only tag in check mode, kill-idle terminating a real idle session, vacuum-analyze."""

from __future__ import annotations

import time

import psycopg2
import pytest
from ansible_run import ROOT, playbook
from servers import PgServer

OPS = str(ROOT / "playbooks" / "ops.yml")


@pytest.fixture(scope="module")
def server():
    s = PgServer(settings={"shared_preload_libraries": "pg_stat_statements"}).start()
    uri = s.create_db("ops")
    conn = psycopg2.connect(uri)
    with conn, conn.cursor() as cur:
        cur.execute("CREATE EXTENSION pg_stat_statements")
        cur.execute('CREATE TABLE "crm_Accounts" (id int PRIMARY KEY, name text)')
        cur.execute('INSERT INTO "crm_Accounts" SELECT i, md5(i::text) FROM generate_series(1, 5000) i')
        cur.execute('SELECT count(*), pg_sleep(0.15) FROM "crm_Accounts"')  # a slow statement
        cur.execute('SELECT name FROM "crm_Accounts" WHERE id = 7')
    conn.close()  # the only idle session below is the one the kill test opens
    yield s, uri
    s.stop()


def ops(uri: str, tag: str, *extra: str):
    r = playbook(OPS, "--tags", tag, "-e", f"ops_pg_uri={uri}", *extra)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    return r.stdout


@pytest.mark.parametrize("tag, shows", [
    ("connections", "connections"), ("slow-queries", "pg_sleep"), ("db-size", " ops "),
    ("table-sizes", "crm_Accounts"), ("index-usage", "crm_Accounts_pkey"),
    ("replication", "no replicas are connected"), ("idle-connections", "no session idle")])
def test_each_read_only_tag_prints_its_table_in_check_mode(server, tag, shows):
    _, uri = server
    out = ops(uri, tag, "--check")
    assert f"== {tag}" in out and shows in out, out[-2500:]
    assert "changed=0" in out


def test_kill_idle_terminates_the_idle_sessions_it_lists(server):
    _, uri = server
    idle = psycopg2.connect(uri, application_name="idle-victim")
    idle.autocommit = True
    time.sleep(1.5)
    listed = ops(uri, "idle-connections", "-e", "idle_minutes=0.02")
    assert "idle-victim" in listed
    dry = ops(uri, "kill-idle", "--check", "-e", "idle_minutes=0.02")
    assert "would terminate 1 sessions" in dry
    with idle.cursor() as cur:
        cur.execute("SELECT 1")  # still alive after the dry run
    time.sleep(1.5)
    out = ops(uri, "kill-idle", "-e", "idle_minutes=0.02", "-e", "confirm_kill=yes")
    assert "idle-victim" in out and "changed=1" in out
    with pytest.raises(psycopg2.OperationalError), idle.cursor() as cur:
        cur.execute("SELECT 1")


def test_vacuum_analyze_runs_and_no_tag_says_which_to_pick(server):
    _, uri = server
    assert "VACUUM ANALYZE done" in ops(uri, "vacuum-analyze")
    r = playbook(OPS, "-e", f"ops_pg_uri={uri}")
    assert r.returncode == 0 and "Pick one with --tags: connections, slow-queries" in r.stdout
