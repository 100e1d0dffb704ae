"""Real ansible-playbook runs of our modules and phases."""

import json
import subprocess

import psycopg2
import pytest
from ansible_run import ROOT, playbook


def _vars(pg, db, dump, artifacts):
    return ["-e", json.dumps({"pg_host": "127.0.0.1", "pg_port": pg.port, "pg_user": "postgres",
                              "pg_password": pg.password, "pg_database": db, "migration_dump": str(dump),
                              "artifacts_dir": str(artifacts), "lab_pg_password": "unused",
                              "migration_poll_seconds": 1})]


def test_migrate_and_validate_phases_then_the_gate_stops_a_corrupted_target(pg, clean_dump, tmp_path):
    pg.create_db("t_playbook")
    args = _vars(pg, "t_playbook", clean_dump, tmp_path)
    r = playbook(str(ROOT / "playbooks" / "30_migrate.yml"), *args)
    assert r.returncode == 0, r.stdout[-4000:]
    assert "documents read after" in r.stdout  # live progress lines while the module ran asynchronously
    assert "reconciled (source = loaded + rejected per table): True" in r.stdout
    summary = json.loads((tmp_path / "migration-summary.json").read_text())
    assert summary["status"] == "complete" and summary["totals"]["rejected"] == 0
    assert pg.password not in r.stdout and pg.password not in (tmp_path / "migration-summary.json").read_text()

    r = playbook(str(ROOT / "playbooks" / "40_validate.yml"), *args)
    assert r.returncode == 0 and "PASS:" in r.stdout, r.stdout[-3000:]

    rerun = playbook(str(ROOT / "playbooks" / "30_migrate.yml"), *args)
    assert rerun.returncode == 0 and '"already_complete": true' in (tmp_path / "migration-summary.json").read_text()

    conn = psycopg2.connect(pg.uri("t_playbook"))
    with conn.cursor() as cur:
        cur.execute('UPDATE "crm_Leads" SET "lastName" = \'tampered\' WHERE id = (SELECT id FROM "crm_Leads" '
                    'ORDER BY id LIMIT 1)')
    conn.commit()
    conn.close()
    r = playbook(str(ROOT / "playbooks" / "40_validate.yml"), *args)
    assert r.returncode != 0
    assert "validation FAILED (fieldMatch)" in r.stdout and "Do not deploy" in r.stdout


def test_migration_module_check_mode_plans_without_writing(pg, clean_dump, tmp_path):
    pg.create_db("t_playbook_check")
    r = playbook(str(ROOT / "playbooks" / "30_migrate.yml"), "--check", *_vars(pg, "t_playbook_check", clean_dump,
                                                                               tmp_path))
    assert r.returncode == 0, r.stdout[-3000:]
    conn = psycopg2.connect(pg.uri("t_playbook_check"))
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_tables WHERE schemaname IN ('public', 'mongo2pg')")
        assert cur.fetchone()[0] == 0
    conn.close()


@pytest.mark.lab
def test_lab_up_demo_and_down_leave_nothing_running():
    """make lab-up, the runbook against the lab (trixie chroot PostgreSQL 17, nx-27017), make lab-down."""
    up = subprocess.run(["make", "demo"], capture_output=True, text=True, cwd=ROOT)
    assert up.returncode == 0, up.stdout[-5000:] + up.stderr[-3000:]
    assert "GO:" in up.stdout and "PASS:" in up.stdout and "status: complete" in up.stdout
    secret = (ROOT / ".lab" / "lab-secrets.yml").read_text().split('"')[1]
    assert secret not in up.stdout + up.stderr
    for p in (ROOT / "artifacts" / "local").iterdir():
        assert secret not in p.read_text(errors="replace"), p
        assert p.stat().st_mode & 0o077 == 0, p
    down = subprocess.run(["make", "lab-down"], capture_output=True, text=True, cwd=ROOT)
    assert down.returncode == 0, down.stderr
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    assert str(ROOT / ".lab") not in ps  # nx-27017 runs with --data-dir .lab/mongo/data
    assert "postgres -D /var/lib/postgresql" not in ps and "/usr/lib/postgresql/17/bin/postgres" not in ps
