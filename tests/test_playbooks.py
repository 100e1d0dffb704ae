"""Real ansible-playbook runs of our modules and phases."""

import json
import os
import subprocess
import sys

import psycopg2
import pytest
from ansible_run import ROOT, playbook, recap


def _vars(pg, db, dump, artifacts):
    return ["-e", json.dumps({"pg_host": "127.0.0.1", "pg_port": pg.port, "pg_user": "postgres",
                              "pg_password": pg.password, "pg_database": db, "migration_dump": str(dump),
                              "artifacts_dir": str(artifacts), "lab_pg_password": "unused", "pg_tls": {},
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

    # With the app's schema named, phase 40 also asks whether the app reads every row: it does with the
    # schema of the migration, and a field the app expects that the database lacks stops the run.
    app = tmp_path / "app.prisma"
    subprocess.run([sys.executable, "-m", "mongo2pg.cli", "schema", "prisma", "--out", str(app)], check=True)
    r = playbook(str(ROOT / "playbooks" / "40_validate.yml"), *args, "-e", f"app_schema_prisma={app}")
    assert r.returncode == 0 and "app-check: every row fits" in r.stdout, r.stdout[-3000:]
    app.write_text(app.read_text().replace("model Users {", "model Users {\n  app_only_field String", 1))
    r = playbook(str(ROOT / "playbooks" / "40_validate.yml"), *args, "-e", f"app_schema_prisma={app}")
    assert r.returncode != 0 and "Users.app_only_field: column Users.app_only_field is missing" in r.stdout
    assert "app-check: 1 problem(s)" in (tmp_path / "timeline.log").read_text() and pg.password not in r.stdout

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


@pytest.mark.parametrize("env", ["staging", "production"])
def test_example_inventories_resolve_their_vault_and_every_phase_parses(env, tmp_path):
    """The example vault is encrypted with the documented password; secrets reach the variables."""
    vault_pw = tmp_path / "vault-password"
    vault_pw.write_text("mongo2pg-example-vault\n")
    inventory = ROOT / "inventories" / env
    host = f"pg-{'prod' if env == 'production' else env}-1.example.internal"
    r = subprocess.run([str(ROOT / ".venv" / "bin" / "ansible"), "-i", str(inventory), host, "-m",
                        "ansible.builtin.debug", "-a",
                        json.dumps({"msg": "{{ postgresql_migration_password }} {{ mongo_uri }}"}),
                        "--vault-password-file", str(vault_pw), "-c", "local"],
                       capture_output=True, text=True, cwd=ROOT, env={**os.environ, "ANSIBLE_NOCOLOR": "1"})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "CHANGE-ME-migration" in r.stdout and "nextcrm_backup:CHANGE-ME-mongo-backup@" in r.stdout
    for phase in sorted((ROOT / "playbooks").glob("[0-9]*.yml")) + [ROOT / "playbooks" / "rollback.yml"]:
        r = playbook(str(phase), "--syntax-check", "--vault-password-file", str(vault_pw), inventory=inventory)
        assert r.returncode == 0, (phase.name, r.stdout + r.stderr)
    encrypted = (inventory / "group_vars" / "all" / "vault.yml").read_text()
    assert encrypted.startswith("$ANSIBLE_VAULT;1.1;AES256") and "CHANGE-ME" not in encrypted


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


@pytest.mark.slow
def test_following_a_long_migration_polls_in_a_loop_with_flat_memory(pg, clean_dump, tmp_path):
    """A hundred and fifty polls (the job held at its junction stage by a lock the test takes): one progress line
    each, and the playbook's memory does not grow with their number (a poll that included itself did)."""
    db = "t_playbook_polls"
    pg.create_db(db)
    r = subprocess.run([str(ROOT / ".venv" / "bin" / "mongo2pg"), "schema", "apply", "--pg-uri", pg.uri(db)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    holder = psycopg2.connect(pg.uri(db))
    with holder.cursor() as cur:
        cur.execute('LOCK TABLE "DocumentsToInvoices" IN SHARE MODE')  # the junction build waits for it
    args = _vars(pg, db, clean_dump, tmp_path)
    args[1] = json.dumps({**json.loads(args[1]), "migration_poll_seconds": 0.02})
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    run = subprocess.Popen([str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", str(ROOT / "inventories" / "local"),
                            str(ROOT / "playbooks" / "30_migrate.yml"), *args], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, cwd=ROOT, env=env)
    polls, samples, lines = 0, {}, []
    try:
        for line in run.stdout:
            lines.append(line)
            if "documents read after" in line:
                polls += 1
                if polls in (30, 150):
                    samples[polls] = _rss_mb(run.pid)
                if polls == 150:
                    break
    finally:
        holder.rollback()
        holder.close()
    rest, _ = run.communicate(timeout=300)
    out = "".join(lines) + rest
    assert run.returncode == 0, out[-4000:]
    assert "[junctions]" in out and "reconciled (source = loaded + rejected per table): True" in out
    print(f"ansible-playbook RSS: {samples[30]:.1f} MB at poll 30, {samples[150]:.1f} MB at poll 150")
    assert polls >= 150 and samples[150] - samples[30] < 3, samples  # MB, for 120 more polls


def test_the_postgresql_settings_playbook_prints_the_roles_computation_and_changes_nothing(tmp_path):
    """What `make bench` configures its server from, and what an operator reads before provisioning:
    the role's settings for a host, from its memory and cores (runbook 6.1 step 2)."""
    out = tmp_path / "settings.json"
    r = playbook("-c", "local", "-e", "dbservers_host=localhost", "-e", f"ansible_python_interpreter={sys.executable}",
                 "-e", f"settings_out={out}", "-e", "postgresql_memory_mb=32768", "-e", "postgresql_cpu_count=8",
                 str(ROOT / "playbooks" / "postgresql_settings.yml"), inventory="localhost,")
    assert r.returncode == 0, r.stdout[-3000:]
    settings = json.loads(out.read_text())
    # The runbook's 32 GB / 8-core figures: 25% and 75% of RAM, 2 GB maintenance, 64 MB work_mem, 8 workers.
    assert (settings["shared_buffers"], settings["effective_cache_size"]) == ("8192MB", "24576MB")
    assert (settings["maintenance_work_mem"], settings["work_mem"]) == ("2048MB", "64MB")
    assert (settings["max_parallel_workers"], settings["max_parallel_workers_per_gather"]) == (8, 4)
    assert settings["max_wal_size"] == "8GB" and settings["wal_compression"] == "on"
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    assert recap(r.stdout)["changed"] == 1  # the JSON file; nothing on the host
