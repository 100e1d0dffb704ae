"""The connection strings the phases build (filter_plugins/connection_uris.py): percent-encoded parts,
TLS parameters, and SCRAM verifiers that PostgreSQL accepts, so no password reaches its log."""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
from pathlib import Path

import psycopg2
import pymongo
import pytest
from ansible_run import render

from mongo2pg.redact import redact_uri

ROOT = Path(__file__).resolve().parent.parent


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


uris = _load("connection_uris", ROOT / "filter_plugins" / "connection_uris.py")
scram = _load("scram_verifier", ROOT / "roles" / "postgresql" / "filter_plugins" / "scram_verifier.py")

HOSTILE = "p@ss:w/o#r%d?x&y z"  # every character the issue names, and a space


def test_a_password_with_uri_characters_logs_in_through_a_verifier_and_a_built_uri(pg):
    admin = psycopg2.connect(pg.uri())
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("DROP ROLE IF EXISTS \"odd user\"")
        # What the role sends: the verifier, never the password.
        cur.execute("CREATE ROLE \"odd user\" LOGIN PASSWORD %s", (scram.postgresql_scram_verifier(HOSTILE, "odd user"),))
        cur.execute("SELECT rolpassword FROM pg_authid WHERE rolname = 'odd user'")
        stored = cur.fetchone()[0]
    admin.close()
    assert stored == scram.postgresql_scram_verifier(HOSTILE, "odd user") and HOSTILE not in stored
    uri = uris.postgresql_uri({"user": "odd user", "password": HOSTILE, "host": "127.0.0.1", "port": pg.port,
                               "database": "postgres", "params": {"sslmode": "disable", "application_name": "a b&c"}})
    assert "@" not in uri.split("@", 1)[1].split("/")[0] and " " not in uri
    conn = psycopg2.connect(uri)
    with conn.cursor() as cur:
        cur.execute("SELECT current_user, current_setting('application_name')")
        assert cur.fetchone() == ("odd user", "a b&c")
    conn.close()
    assert HOSTILE not in redact_uri(uri) and "***" in redact_uri(uri)
    wrong = uris.postgresql_uri({"user": "odd user", "password": HOSTILE + "!", "host": "127.0.0.1", "port": pg.port,
                                 "database": "postgres"})
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        psycopg2.connect(wrong)


def test_the_verifier_is_stable_per_user_and_password_and_differs_otherwise():
    v = scram.postgresql_scram_verifier(HOSTILE, "a")
    assert v == scram.postgresql_scram_verifier(HOSTILE, "a")  # an unchanged password changes nothing
    assert v != scram.postgresql_scram_verifier(HOSTILE, "b") != scram.postgresql_scram_verifier("other", "a")
    assert v.startswith("SCRAM-SHA-256$4096:")


def test_a_mongodb_uri_keeps_the_password_whole(mongo):
    uri = uris.mongodb_uri({"hosts": [f"127.0.0.1:{mongo.port}"], "user": "u", "password": HOSTILE,
                            "params": {"authSource": "admin", "directConnection": "true"}})
    parsed = pymongo.uri_parser.parse_uri(uri)
    assert parsed["password"] == HOSTILE and parsed["username"] == "u" and parsed["nodelist"] == [("127.0.0.1", mongo.port)]
    assert uris.mongodb_uri({"host": "127.0.0.1", "port": mongo.port}) == f"mongodb://127.0.0.1:{mongo.port}/"


def test_ansible_builds_the_same_uri_through_the_filter(tmp_path):
    """The filter as the phases use it, through ansible-playbook and ansible.cfg's filter_plugins."""
    uri = render("{'user': 'm', 'password': pw, 'host': '::1', 'port': 5432, 'database': 'nextcrm', "
                 "'params': {'sslmode': 'verify-full', 'sslrootcert': '/etc/ssl/pg ca.pem'}} | postgresql_uri",
                 tmp_path, {"pw": HOSTILE})
    assert uri == (
        "postgresql://m:p%40ss%3Aw%2Fo%23r%25d%3Fx%26y%20z@[::1]:5432/nextcrm?sslmode=verify-full"
        "&sslrootcert=%2Fetc%2Fssl%2Fpg%20ca.pem")


def test_a_multi_host_uri_finds_the_server_that_takes_writes(tmp_path, pg, clean_dump):
    """A primary gone and its promoted standby listed second (`hosts`, `target_session_attrs=read-write`):
    libpq goes on to the next host, and a migration through the built URI completes there."""
    with socket.socket() as s:  # a port nothing listens on: the old primary, down
        s.bind(("127.0.0.1", 0))
        down = s.getsockname()[1]
    uri = uris.postgresql_uri({"user": "postgres", "password": pg.password,
                               "hosts": [f"127.0.0.1:{down}", f"127.0.0.1:{pg.port}"], "database": "postgres",
                               "params": {"target_session_attrs": "read-write", "connect_timeout": "5"}})
    assert f"@127.0.0.1:{down},127.0.0.1:{pg.port}/postgres?" in uri
    conn = psycopg2.connect(uri)
    with conn.cursor() as cur:
        cur.execute("SELECT inet_server_port(), pg_is_in_recovery()")
        assert cur.fetchone() == (pg.port, False)
    conn.close()
    target = pg.create_db("t_multi_host")
    db_uri = uri.replace("/postgres?", "/" + target.rsplit("/", 1)[1].split("?")[0] + "?")
    r = subprocess.run([sys.executable, "-m", "mongo2pg", "migrate", "--dump", str(clean_dump), "--pg-uri", db_uri,
                        "--quiet", "--error-log", str(tmp_path / "e.log"), "--checkpoint-file", str(tmp_path / "c")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]


def test_an_atlas_uri_is_srv_with_tls_and_refuses_a_port():
    uri = uris.mongodb_uri({"srv": True, "hosts": ["cluster0.ab1cd.mongodb.net"], "user": "app", "password": HOSTILE,
                            "database": "nextcrm", "params": {"retryWrites": "true", "w": "majority"}})
    assert uri == ("mongodb+srv://app:p%40ss%3Aw%2Fo%23r%25d%3Fx%26y%20z@cluster0.ab1cd.mongodb.net/nextcrm"
                   "?retryWrites=true&w=majority&tls=true")
    assert HOSTILE not in redact_uri(uri) and redact_uri(uri).startswith("mongodb+srv://app:***@")
    with pytest.raises(ValueError, match="one host name without a port"):
        uris.mongodb_uri({"srv": True, "hosts": ["cluster0.ab1cd.mongodb.net:27017"]})
