"""Online migration, its first part: change capture opened before the bulk read (nx-27017's change streams,
real PostgreSQL). Every document the app changes while the capture runs, or while it is down after a kill -9,
ends marked to be read again, with its last operation; the resume tokens commit with the ids."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import psycopg2
import pymongo
import pytest
from bson import ObjectId

from mongo2pg.errors import ConfigError
from mongo2pg.online.capture import Capture, id_key


def _capture(pg_uri: str, mongo_uri: str, db: str, *extra: str) -> subprocess.Popen:
    # the engine's own process (python -m), so a kill hits the capture itself
    return subprocess.Popen([sys.executable, "-m", "mongo2pg", "online", "capture", "--pg-uri", pg_uri, "--mongo-uri",
                             mongo_uri, "--db", db, "--batch", "50", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_open(proc: subprocess.Popen) -> str:
    line = proc.stdout.readline()
    assert "streams open on" in line, line + proc.stderr.read()
    return line


def _write(db, rng: random.Random, n: int, changed: dict, live: dict) -> None:
    """n app writes over three collections: creates, renames, deletes; `changed` keeps each id's last op."""
    for _ in range(n):
        coll = rng.choice(["crm_Accounts", "crm_Contacts", "Tasks"])
        ids = live.setdefault(coll, [])
        op = rng.choice(["insert", "insert", "update", "delete"]) if ids else "insert"
        if op == "insert":
            _id = ObjectId()
            db[coll].insert_one({"_id": _id, "name": f"n{rng.random()}"})
            ids.append(_id)
        elif op == "update":
            _id = rng.choice(ids)
            db[coll].update_one({"_id": _id}, {"$set": {"name": f"renamed {rng.random()}"}})
        else:
            _id = ids.pop(rng.randrange(len(ids)))
            db[coll].delete_one({"_id": _id})
        changed[(coll, id_key(_id))] = op


def _marked(pg_uri: str) -> dict:
    with psycopg2.connect(pg_uri) as conn, conn.cursor() as cur:
        cur.execute("SELECT collection, source_id, op FROM mongo2pg.online_changes")
        return {(c, i): op for c, i, op in cur.fetchall()}


def test_every_change_while_capturing_or_killed_is_marked_once_with_its_last_operation(mongo, pg_db):
    db_name = "online_kill"
    db = pymongo.MongoClient(mongo.uri)[db_name]
    db.crm_Accounts.insert_one({"_id": ObjectId(), "name": "before the capture"})  # not a change: the bulk's
    rng, changed, live = random.Random(7), {}, {}
    first = _capture(pg_db, mongo.uri, db_name)
    _wait_open(first)
    _write(db, rng, 150, changed, live)
    time.sleep(1.0)
    os.kill(first.pid, signal.SIGKILL)  # mid-stream: some events committed, maybe not all
    first.wait(10)
    _write(db, rng, 100, changed, live)  # while no capture runs
    second = _capture(pg_db, mongo.uri, db_name, "--until-idle", "3")
    assert "(29 resumed from their stored tokens)" in _wait_open(second)  # every stream, from where it stopped
    _write(db, rng, 50, changed, live)
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    marked = _marked(pg_db)
    assert marked == changed  # every changed document, none missing, none extra, each with its last operation
    with psycopg2.connect(pg_db) as conn, conn.cursor() as cur:
        cur.execute("SELECT sum(events) FROM mongo2pg.online_streams WHERE collection IN "
                    "('crm_Accounts', 'crm_Contacts', 'Tasks')")
        assert cur.fetchone()[0] >= 300  # an event read again after the kill counts again; it marks the same id
        cur.execute("SELECT count(*) FROM mongo2pg.online_streams WHERE token IS NULL")
        assert cur.fetchone()[0] == 0


def test_status_and_reset_speak_for_each_collection(mongo, pg_db):
    db = pymongo.MongoClient(mongo.uri)["online_status"]
    proc = _capture(pg_db, mongo.uri, "online_status", "--until-idle", "2")
    _wait_open(proc)
    db.Tasks.insert_one({"title": "one"})
    proc.communicate(timeout=60)
    st = subprocess.run([sys.executable, "-m", "mongo2pg", "online", "status", "--pg-uri", pg_db],
                        capture_output=True, text=True)
    assert st.returncode == 0 and '"Tasks": {' in st.stdout and '"documents_changed": 1' in st.stdout, st.stdout
    r = subprocess.run([sys.executable, "-m", "mongo2pg", "online", "reset", "--pg-uri", pg_db, "--collection", "Tasks"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "Tasks forgotten" in r.stdout
    assert not any(c == "Tasks" for c, _ in _marked(pg_db))


class _LostHistory:
    """A stand-in database whose streams cannot resume: nx-27017 answers an unknown token with nothing, so the
    server's "history lost" (ChangeStreamHistoryLost, code 286, real MongoDB) is produced here, said so."""

    def __getitem__(self, name):
        return self

    def watch(self, **_):
        raise pymongo.errors.OperationFailure("Resume of change stream was not possible", code=286)


def test_a_token_the_server_no_longer_has_is_one_line_naming_the_collection_never_a_skip(pg_db):
    cap = Capture(pg_db, _LostHistory(), ["crm_Contacts"])
    with pytest.raises(ConfigError) as err:
        cap.open()
    msg = str(err.value)
    assert "collection crm_Contacts" in msg and "bulk crm_Contacts again" in msg and "code 286" in msg
    assert "\n" not in msg
    cap.close()
