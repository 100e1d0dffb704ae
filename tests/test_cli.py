import subprocess
import sys


def cli(*args):
    return subprocess.run([sys.executable, "-m", "mongo2pg.cli", *args], capture_output=True, text=True)


def test_help_prints_and_starts_nothing():
    for cmd in ("migrate", "validate", "sample-data", "schema", "plan"):
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
