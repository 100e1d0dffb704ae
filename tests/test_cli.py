import os
import subprocess
import sys

import psycopg2
import pytest


def cli(*args):
    return subprocess.run([sys.executable, "-m", "mongo2pg.cli", *args], capture_output=True, text=True)


def test_help_prints_and_starts_nothing():
    for cmd in ("migrate", "validate", "sample-data", "schema", "plan", "mapping"):
        r = cli(cmd, "--help")
        assert r.returncode == 0 and "usage:" in r.stdout


def test_unreachable_server_is_one_redacted_line_with_exit_2(tmp_path, clean_dump):
    r = cli("migrate", "--dump", str(clean_dump), "--pg-uri", "postgresql://u:TopSecret99@127.0.0.1:1/db",
            "--error-log", str(tmp_path / "e"), "--checkpoint-file", str(tmp_path / "c"))
    assert r.returncode == 2
    assert "TopSecret99" not in r.stdout + r.stderr and "u:***@" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "PostgreSQL" in r.stderr


def test_wrong_password_and_missing_database_name_the_problem(pg, clean_dump, tmp_path):
    r = cli("migrate", "--dump", str(clean_dump), "--pg-uri", pg.uri(password="wrong-Pass-77"))
    assert r.returncode == 2 and "password authentication failed" in r.stderr and "wrong-Pass-77" not in r.stderr
    r = cli("migrate", "--dump", str(clean_dump), "--pg-uri", pg.uri("no_such_db"))
    assert r.returncode == 2 and "does not exist" in r.stderr and "create the database" in r.stderr


def test_bad_source_and_bad_mapping_exit_2(tmp_path, pg_db):
    r = cli("migrate", "--dump", str(tmp_path / "nope"), "--pg-uri", pg_db)
    assert r.returncode == 2 and "does not exist" in r.stderr
    bad = tmp_path / "m.yml"
    bad.write_text("tables:\n  T:\n    columns: 5\n")
    r = cli("plan", "--dump", str(tmp_path), "--mapping", str(bad))
    assert r.returncode == 2 and "m.yml:3: tables.T.columns" in r.stderr


def _migrate(tmp_path, dump, pg_uri, *extra):
    return cli("migrate", "--dump", str(dump), "--pg-uri", pg_uri, "--quiet", "--error-log", str(tmp_path / "e.log"),
               "--checkpoint-file", str(tmp_path / "c.json"), *extra)


def test_malformed_uris_and_an_unreachable_mongodb_are_one_redacted_line(clean_dump):
    r = cli("migrate", "--dump", str(clean_dump), "--pg-uri", "postgresql://u:Secret-1@[bad")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "Secret-1" not in r.stderr
    r = cli("plan", "--mongo-uri", "mongodb://u:Secret-2@127.0.0.1:1/")
    assert r.returncode == 2 and "MongoDB mongodb://u:***@127.0.0.1:1/" in r.stderr and "Secret-2" not in r.stderr
    r = cli("plan", "--mongo-uri", "mongodb:/nonsense")
    assert r.returncode == 2 and "Invalid URI scheme" in r.stderr


def test_a_target_schema_that_differs_is_refused_before_loading_and_recovers(tmp_path, pg_db, clean_dump):
    conn = psycopg2.connect(pg_db)
    with conn.cursor() as cur:
        cur.execute('CREATE TABLE "Boards" (id uuid PRIMARY KEY, "__v" text)')  # wrong type, missing columns
    conn.commit()
    r = _migrate(tmp_path, clean_dump, pg_db)
    assert r.returncode == 2 and "the target schema differs from the mapping" in r.stderr
    assert "column Boards.__v: type expected 'INTEGER', found 'TEXT'" in r.stderr
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM mongo2pg.checkpoint")
        assert cur.fetchone()[0] == 0  # nothing was loaded
        cur.execute('DROP TABLE "Boards"')
    conn.commit()
    conn.close()
    assert _migrate(tmp_path, clean_dump, pg_db).returncode == 0  # the operator's fix, then a clean run


def test_a_user_that_may_not_create_gets_the_privileges_it_needs_named(tmp_path, pg, clean_dump):
    uri = pg.create_db("t_readonly_user")
    admin = psycopg2.connect(uri)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("DROP ROLE IF EXISTS reader; CREATE ROLE reader LOGIN PASSWORD 'reader-Pw-1'")
        cur.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    admin.close()
    r = _migrate(tmp_path, clean_dump, pg.uri("t_readonly_user", user="reader", password="reader-Pw-1"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "PostgreSQL refused to create the schema: permission denied" in r.stderr and "CREATE" in r.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_a_full_disk_for_the_error_log_stops_cleanly_and_the_rerun_resumes(tmp_path, pg_db, dirty_dump):
    full = tmp_path / "full"
    full.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8k", "tmpfs", str(full)], check=True)
    try:
        r = cli("migrate", "--dump", str(dirty_dump), "--pg-uri", pg_db, "--quiet", "--error-log",
                str(full / "errors.log"), "--checkpoint-file", str(tmp_path / "c.json"))
        assert r.returncode == 2, r.stdout[-2000:] + r.stderr[-2000:]
        assert "No space left on device" in r.stderr and "rerun" in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    finally:
        subprocess.run(["umount", str(full)], check=True)
    r = _migrate(tmp_path, dirty_dump, pg_db)
    assert r.returncode == 0 and "Reconciled: source = loaded + rejected for every table" in r.stdout


def test_a_read_only_target_is_one_clear_line(tmp_path, pg, clean_dump):
    uri = pg.create_db("t_read_only_db")
    admin = psycopg2.connect(pg.uri())
    admin.autocommit = True
    with admin.cursor() as cur:  # what a hot standby or a locked-down database answers
        cur.execute("ALTER DATABASE t_read_only_db SET default_transaction_read_only = on")
    admin.close()
    r = _migrate(tmp_path, clean_dump, uri)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "read-only transaction" in r.stderr and "not a read-only replica" in r.stderr


def test_a_missing_mongodb_database_names_the_option_to_check(mongo):
    r = cli("plan", "--mongo-uri", mongo.uri, "--db", "no_such_database")
    assert r.returncode == 2 and "'no_such_database' has no collections" in r.stderr and "--db" in r.stderr
