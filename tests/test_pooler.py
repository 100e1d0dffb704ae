"""A transaction-mode pooler in front of the target, for real (Debian's PgBouncer): what it does to a
session setting (the app gets the migration's synchronous_commit = off), and every engine command that
keeps session state refusing it in one line that names the direct URL; session mode passes."""

from __future__ import annotations

import subprocess
import sys

import psycopg2
import pytest
from servers import PgBouncer

from mongo2pg.pooler import backend_pids


@pytest.fixture(scope="module")
def bouncers(pg):
    made = {mode: PgBouncer(pg, mode).start() for mode in ("transaction", "session")}
    yield made
    for b in made.values():
        b.stop()


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mongo2pg", *args], capture_output=True, text=True)


def test_through_a_transaction_pooler_a_session_setting_reaches_the_next_client(pg, bouncers):
    """Why it is refused: what one client sets for its session is what the next client gets."""
    pg.create_db("t_pooled_leak")
    uri = bouncers["transaction"].uri("t_pooled_leak")
    migration = psycopg2.connect(uri)
    migration.autocommit = True
    with migration.cursor() as cur:
        cur.execute("SELECT set_config('synchronous_commit', 'off', false)")
    app = psycopg2.connect(uri)
    with app.cursor() as cur:
        cur.execute("SHOW synchronous_commit")
        assert cur.fetchone()[0] == "off"
    app.close()
    migration.close()
    a, b = backend_pids(uri)
    assert a == b
    direct = backend_pids(pg.uri("t_pooled_leak"))
    session = backend_pids(bouncers["session"].uri("t_pooled_leak"))
    assert direct[0] != direct[1] and session[0] != session[1]


def test_every_command_that_keeps_session_state_refuses_it_in_one_line(tmp_path, pg, bouncers, clean_dump, mongo):
    pg.create_db("t_pooled")
    uri = bouncers["transaction"].uri("t_pooled")
    runs = {
        "migrate": _cli("migrate", "--dump", str(clean_dump), "--pg-uri", uri, "--error-log", str(tmp_path / "e"),
                        "--checkpoint-file", str(tmp_path / "c")),
        "validate": _cli("validate", "--dump", str(clean_dump), "--pg-uri", uri, "--report", str(tmp_path / "r.json")),
        "capture": _cli("capture", "install", "--pg-uri", uri),
        "reverse-sync": _cli("reverse-sync", "--pg-uri", uri, "--mongo-uri", mongo.uri),
        "remigrate": _cli("remigrate", "--rejects", "--dump", str(clean_dump), "--pg-uri", uri),
    }
    for name, r in runs.items():
        err = r.stderr.strip()
        assert r.returncode == 2 and len(err.splitlines()) == 1, (name, r.stdout[-500:], err)
        assert "connection pooler in transaction mode" in err and "direct URL" in err, (name, err)
        assert pg.password not in err and "Traceback" not in err
    conn = psycopg2.connect(pg.uri("t_pooled"))
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('mongo2pg.run')")
        assert cur.fetchone()[0] is None  # refused before it wrote anything
    conn.close()


def test_a_pooler_in_session_mode_is_no_problem(tmp_path, pg, bouncers, clean_dump):
    pg.create_db("t_session_pooled")
    r = _cli("migrate", "--dump", str(clean_dump), "--pg-uri", bouncers["session"].uri("t_session_pooled"),
             "--quiet", "--error-log", str(tmp_path / "e"), "--checkpoint-file", str(tmp_path / "c"))
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
