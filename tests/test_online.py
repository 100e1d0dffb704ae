"""Online migration, its first part: change capture opened before the bulk read (nx-27017's change streams,
real PostgreSQL). Every document the app changes while the capture runs, or while it is down after a kill -9,
ends marked to be read again, with its last operation; the resume tokens commit with the ids."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time

import psycopg2
import pymongo
import pytest
from bson import ObjectId
from servers import table_digests

from mongo2pg.errors import ConfigError
from mongo2pg.fixtures.app_writes import AppWrites
from mongo2pg.fixtures.write import write_live
from mongo2pg.ids import objectid_from_uuid, uuid_from_objectid
from mongo2pg.online.capture import Capture, id_key
from mongo2pg.ops import monitor


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
    assert st.returncode == 0 and '"Tasks": {' in st.stdout and '"documents_waiting": 1' in st.stdout, st.stdout
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


def _engine(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mongo2pg", *args], capture_output=True, text=True, timeout=timeout)


def _service(action: str, pg_uri: str, mongo_uri: str, db: str, folder, *extra: str) -> subprocess.CompletedProcess:
    return _engine("online", action, "--pg-uri", pg_uri, "--mongo-uri", mongo_uri, "--db", db,
                   "--pid-file", str(folder / "online.pid"), "--log-file", str(folder / "online.log"),
                   "--status-file", str(folder / "online-status.json"), "--error-log", str(folder / "online-errors.log"),
                   *extra)


def test_online_bulk_while_the_app_writes_killed_service_and_cutover_equal_an_offline_run(mongo, pg, tmp_path):
    """The service (capture and catch-up) started before the bulk; the app writes through the bulk and the
    catch-up, a duplicate email among its writes while the bulk reads; the service killed with SIGKILL and
    started again at seeded moments during the bulk and during the catch-up; the cutover killed mid-drain and
    run again. The tables then equal an offline run of the
    final source, table by table, the duplicate is a duplicate_key reject, and validation passes."""
    db_name = "online_e2e"
    write_live(pymongo.MongoClient(mongo.uri), db=db_name, scale=0.005, seed=11)
    db = pymongo.MongoClient(mongo.uri)[db_name]
    online, offline = pg.create_db("t_online_e2e"), pg.create_db("t_online_offline")
    started = _service("start", online, mongo.uri, db_name, tmp_path)
    assert started.returncode == 0 and "service running" in started.stdout, started.stdout + started.stderr
    assert mongo.uri not in (tmp_path / "online.log").read_text()
    app = AppWrites(db, interval=0.005, seed=5, version_field="v")  # `v`, not `__v`: its new documents rejects
    app.start()
    taken = db.Users.find_one({"email": {"$type": "string"}}, {"email": 1})["email"]
    second_user = db.Users.insert_one({"v": 0, "email": taken, "name": "second with that email"}).inserted_id
    moments = random.Random(29)  # the kills' seeded moments: during the bulk, the catch-up, the drain

    def kill_and_restart_the_service() -> None:
        os.kill(int((tmp_path / "online.pid").read_text()), signal.SIGKILL)
        time.sleep(0.5)
        again = _service("start", online, mongo.uri, db_name, tmp_path)
        assert again.returncode == 0, again.stdout + again.stderr

    bulk = subprocess.Popen([sys.executable, "-m", "mongo2pg", "migrate", "--online", "--mongo-uri", mongo.uri, "--db",
                             db_name, "--pg-uri", online, "--quiet", "--error-log", str(tmp_path / "online-errors.log")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    bulk_started = time.monotonic()
    time.sleep(moments.uniform(0.5, 2.0))
    assert bulk.poll() is None, "the bulk ended before the kill meant for its middle"
    kill_and_restart_the_service()
    out, err = bulk.communicate(timeout=600)
    assert bulk.returncode == 0, out[-3000:] + err[-3000:]
    print(f"bulk done {time.monotonic() - bulk_started:.1f} s after its start")
    time.sleep(moments.uniform(0.5, 3.0))  # the catch-up under way
    kill_and_restart_the_service()
    status: dict = {}
    for _ in range(240):  # the restarted service at work: it resumed from its tokens and applies
        status = json.loads((tmp_path / "online-status.json").read_text())
        if status["events_captured"] > 0 and status["documents_loaded"] > 0:
            break
        time.sleep(0.25)
    app.stop.set()  # maintenance on: the app writes no more
    app.join(30)
    assert status["state"] == "capturing" and status["events_captured"] > 0, status
    assert _service("stop", online, mongo.uri, db_name, tmp_path).returncode == 0
    assert json.loads((tmp_path / "online-status.json").read_text())["state"] == "stopped"
    first = subprocess.Popen([sys.executable, "-m", "mongo2pg", "online", "cutover", "--pg-uri", online, "--mongo-uri",
                              mongo.uri, "--db", db_name, "--idle-seconds", "2"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    time.sleep(moments.uniform(0.5, 1.5))
    first.kill()  # mid-drain: what it read and did not commit is read again
    first.wait(10)
    cut = _service("cutover", online, mongo.uri, db_name, tmp_path, "--report", str(tmp_path / "cutover.json"))
    print(f"app writes: {app.writes}; {cut.stdout.strip()}")
    assert cut.returncode == 0, cut.stdout[-3000:] + cut.stderr[-3000:] + (tmp_path / "online-errors.log").read_text()[-3000:]
    report = json.loads((tmp_path / "cutover.json").read_text())
    assert report["status"] == "complete" and report["totals"]["reconciled"], report
    assert set(report["parts"]) >= {"drain", "apply", "unique keys", "indexes, foreign keys, ANALYZE"}
    assert app.writes > 100
    done = _engine("migrate", "--mongo-uri", mongo.uri, "--db", db_name, "--pg-uri", offline, "--quiet",
                   "--error-log", str(tmp_path / "offline-errors.log"))
    assert done.returncode == 0, done.stderr[-3000:]
    got, want = table_digests(online), table_digests(offline)
    assert got == want, {t: (got[t], want[t]) for t in want if got.get(t) != want[t]}
    log = (tmp_path / "online-errors.log").read_text()
    assert str(second_user) in log and "duplicate_key" in log
    check = _engine("validate", "--mongo-uri", mongo.uri, "--db", db_name, "--pg-uri", online,
                    "--error-log", str(tmp_path / "online-errors.log"), "--report", str(tmp_path / "report.json"))
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr[-2000:]


def test_the_source_check_names_a_missing_replica_set_and_a_short_oplog(mongo):
    from bson.timestamp import Timestamp

    from mongo2pg.online.oplog import source_readiness

    # nx-27017 answers hello as a standalone: on real MongoDB that source could serve no change stream
    ready = source_readiness(pymongo.MongoClient(mongo.uri), bulk_seconds=None, min_hours=24)
    assert ready["replica_set"] is None and "not a replica set" in ready["nogo"][0]

    class _ReplicaSet:
        """A stand-in client for a replica set whose oplog spans `hours` (no replica set runs here: the stand-in
        has no oplog; said so)."""

        def __init__(self, hours: float):
            self.entries = [{"ts": Timestamp(1_800_000_000, 1)}, {"ts": Timestamp(1_800_000_000 + int(hours * 3600), 1)}]
            self.admin = self

        def command(self, name):
            return {"setName": "rs0", "isWritablePrimary": True}

        def __getitem__(self, name):
            return self

        def find(self, *_):
            return self

        def sort(self, _key, direction):
            self.direction = direction
            return self

        def limit(self, _n):
            return [self.entries[0] if self.direction == 1 else self.entries[-1]]

    assert source_readiness(_ReplicaSet(30), bulk_seconds=3600, min_hours=24)["nogo"] == []
    short = source_readiness(_ReplicaSet(10), bulk_seconds=3600, min_hours=24)
    assert short["oplog_hours"] == 10 and "less than the 24.0 h needed" in short["nogo"][0]
    # a bulk estimated at 20 h needs 30 h of oplog (x 1.5), more than the 24 h floor
    assert "30.0 h needed" in source_readiness(_ReplicaSet(26), bulk_seconds=20 * 3600, min_hours=24)["nogo"][0]


def test_the_source_killed_and_restarted_mid_stream_the_service_resumes_from_its_tokens(mongo, pg, tmp_path):
    db_name = "online_restart"
    client = pymongo.MongoClient(mongo.uri)
    client[db_name].crm_Accounts.insert_many([{"__v": 0, "name": f"first {i}"} for i in range(20)])
    online = pg.create_db("t_online_restart")
    assert _service("start", online, mongo.uri, db_name, tmp_path).returncode == 0
    bulk = _engine("migrate", "--online", "--mongo-uri", mongo.uri, "--db", db_name, "--pg-uri", online, "--quiet",
                   "--error-log", str(tmp_path / "online-errors.log"))
    assert bulk.returncode == 0, bulk.stderr[-2000:]

    def write(n: int, tag: str) -> None:
        accounts = pymongo.MongoClient(mongo.uri)[db_name].crm_Accounts
        ids = [d["_id"] for d in accounts.find({}, {"_id": 1})]
        for i in range(n):
            if i % 2:
                accounts.insert_one({"__v": 0, "name": f"{tag} {i}"})
            else:
                accounts.update_one({"_id": ids[i % len(ids)]}, {"$set": {"name": f"{tag} renamed {i}"}})

    write(40, "before the crash")
    mongo.kill()  # nx-27017 itself, SIGKILL, mid-stream; its data and stream history kept on disk. The service's
    # stream on the collection went quiet without an error (pymongo neither resumed it nor closed it): its
    # periodic reanchor (30 s) reopens it from the last token
    time.sleep(2)
    mongo.start()
    write(40, "after the restart")
    status = {}
    for _ in range(120):
        status = json.loads((tmp_path / "online-status.json").read_text())
        if status["documents_waiting"] == 0 and status["events_captured"] >= 60 and status["state"] == "capturing":
            break
        time.sleep(0.5)
    # the running service caught every change across the crash itself, not the cutover's drain after it
    assert status["events_captured"] >= 60 and status["documents_waiting"] == 0, status
    st = json.loads(_engine("status", "--pg-uri", online).stdout)  # the migration's status shows the catch-up
    assert st["online"]["documents_waiting"] == 0 and st["online"]["seconds_behind"] == 0.0, st
    assert _service("stop", online, mongo.uri, db_name, tmp_path).returncode == 0
    cut = _service("cutover", online, mongo.uri, db_name, tmp_path)
    assert cut.returncode == 0, cut.stdout + cut.stderr
    log = (tmp_path / "online.log").read_text()
    assert ("streams reopened from their last token" in log or "retrying from the stored tokens" in log) \
        and mongo.uri not in log
    want = {str(d["_id"]): d["name"] for d in pymongo.MongoClient(mongo.uri)[db_name].crm_Accounts.find()}
    with psycopg2.connect(online) as conn, conn.cursor() as cur:
        cur.execute('SELECT id::text, name FROM "crm_Accounts"')
        got = {str(objectid_from_uuid(i)): n for i, n in cur.fetchall()}
    assert got == want and len(want) == 60  # 20 + 20 + 20 created, every rename on both sides of the crash


def _sql(uri: str, query: str, args: tuple = ()) -> list[tuple]:
    conn = psycopg2.connect(uri)
    with conn, conn.cursor() as cur:
        cur.execute(query, args)
        rows = cur.fetchall() if cur.description else []
    conn.close()
    return rows


def test_validation_at_cutover_checks_only_what_changed_after_its_full_pass_and_still_catches_every_fault(
        mongo, pg, tmp_path):
    """A full pass (--baseline) while the service runs, a row corrupted before it; changes after it (a rename, a
    deletion, a watcher link added from the user's side); the cutover. Validation --since then checks a few
    records, not the data, names the corrupted row the pass found, and catches a fault put on a changed record,
    on a junction link touching one, and among the rows of unchanged documents; a baseline of a capture since
    started over means every record."""
    db_name = "online_since"
    write_live(pymongo.MongoClient(mongo.uri), db=db_name, scale=0.005, seed=13)
    db = pymongo.MongoClient(mongo.uri)[db_name]
    target = pg.create_db("t_online_since")
    errors = str(tmp_path / "online-errors.log")
    assert _service("start", target, mongo.uri, db_name, tmp_path).returncode == 0
    bulk = _engine("migrate", "--online", "--mongo-uri", mongo.uri, "--db", db_name, "--pg-uri", target, "--quiet",
                   "--error-log", errors)
    assert bulk.returncode == 0, bulk.stderr[-3000:]
    accounts = [d["_id"] for d in db.crm_Accounts.find({}, {"_id": 1}).sort("_id", 1)]
    bad, renamed, deleted = accounts[0], accounts[1], accounts[-1]
    bad_uuid = _sql(target, 'SELECT id::text FROM "crm_Accounts" ORDER BY id LIMIT 1')[0][0]
    assert objectid_from_uuid(bad_uuid) == bad
    _sql(target, 'UPDATE "crm_Accounts" SET name = name || \'!\' WHERE id = %s', (bad_uuid,))

    def validate(*extra: str) -> tuple[subprocess.CompletedProcess, dict]:
        report = tmp_path / "report.json"
        run = _engine("validate", "--mongo-uri", mongo.uri, "--db", db_name, "--pg-uri", target, "--error-log", errors,
                      "--report", str(report), *extra)
        return run, json.loads(report.read_text())

    baseline = tmp_path / "baseline.json"
    _, full = validate("--baseline", str(baseline))
    assert oct(baseline.stat().st_mode & 0o777) == "0o600"
    assert str(bad) in json.loads(baseline.read_text())["flagged"]["crm_Accounts"]
    user = db.Users.find_one({"watching_accountsIDs": {"$exists": True}}, {"_id": 1})["_id"]
    db.crm_Accounts.update_one({"_id": renamed}, {"$set": {"name": "Renamed after the pass"}})
    db.crm_Accounts.delete_one({"_id": deleted})
    db.Users.update_one({"_id": user}, {"$addToSet": {"watching_accountsIDs": renamed}})
    assert _service("stop", target, mongo.uri, db_name, tmp_path).returncode == 0
    # the monitoring snapshot shows the catch-up's backlog (a role that may not read it: none, and no failure)
    snap = monitor.snapshot(target, disk_path=str(tmp_path))
    assert snap["database"]["online_catch_up"]["documents_waiting"] == _sql(
        target, "SELECT count(*) FROM mongo2pg.online_changes")[0][0]
    assert any(b.startswith("online catch-up: ") for b in monitor.evaluate(snap, {"online_seconds_behind": -1}))
    _sql(target, "CREATE ROLE unit_watcher LOGIN PASSWORD 'w' IN ROLE pg_monitor")
    watcher = f"postgresql://unit_watcher:w@127.0.0.1:{pg.port}/t_online_since"
    assert monitor.snapshot(watcher, disk_path=str(tmp_path))["database"]["online_catch_up"] is None
    cut = _service("cutover", target, mongo.uri, db_name, tmp_path, "--report", str(tmp_path / "cutover.json"))
    assert cut.returncode == 0, cut.stdout[-3000:] + cut.stderr[-3000:]

    run, report = validate("--since", str(baseline))
    assert run.returncode != 0 and report["mode"].startswith("changes since")
    assert [m["mongoId"] for m in report["sampleRecordValidation"]["fieldMismatches"]] == [str(bad)]
    print(f"rows checked: full pass {full['rowsChecked']}, at cutover {report['rowsChecked']}")
    assert report["rowsChecked"] < full["rowsChecked"] / 10, (report["rowsChecked"], full["rowsChecked"])
    name = db.crm_Accounts.find_one({"_id": bad})["name"]
    _sql(target, 'UPDATE "crm_Accounts" SET name = %s WHERE id = %s', (name, bad_uuid))
    run, report = validate("--since", str(baseline))
    assert run.returncode == 0 and report["overallStatus"] == "PASS", run.stdout[-2000:] + run.stderr[-2000:]

    renamed_uuid, user_uuid = uuid_from_objectid(renamed), uuid_from_objectid(user)
    other_user = uuid_from_objectid(db.Users.find_one({"_id": {"$ne": user}}, {"_id": 1})["_id"])
    linked = {a for (a,) in _sql(target, 'SELECT account_id::text FROM "AccountWatchers" WHERE user_id = %s',
                                 (other_user,))}
    unchanged = next(u for u in map(uuid_from_objectid, accounts[2:-1]) if u not in linked)
    faults = {  # each put on the target, caught by the layer named, then undone
        "a changed record": ('UPDATE "crm_Accounts" SET name = \'x\' WHERE id = %s', (renamed_uuid,),
                             'UPDATE "crm_Accounts" SET name = \'Renamed after the pass\' WHERE id = %s', "fieldMatch"),
        "a link of a changed record": (
            'DELETE FROM "AccountWatchers" WHERE account_id = %s AND user_id = %s', (renamed_uuid, user_uuid),
            'INSERT INTO "AccountWatchers" (account_id, user_id) VALUES (%s, %s)', "referentialIntegrity"),
        "a link among unchanged documents": (
            'INSERT INTO "AccountWatchers" (account_id, user_id) VALUES (%s, %s)', (unchanged, other_user),
            'DELETE FROM "AccountWatchers" WHERE account_id = %s AND user_id = %s', "referentialIntegrity"),
    }
    for fault, (put, args, undo, layer) in faults.items():
        _sql(target, put, args)
        run, report = validate("--since", str(baseline))
        assert run.returncode != 0 and layer in report["failedLayers"], (fault, report["failedLayers"])
        _sql(target, undo, args)
    run, report = validate("--since", str(baseline))
    assert report["overallStatus"] == "PASS", report["failedLayers"]

    _sql(target, "UPDATE mongo2pg.online_streams SET opened_at = now()")  # as a capture started over
    run, report = validate("--since", str(baseline))
    assert "checking every record" in run.stderr and report["mode"] == "every row"
    assert report["overallStatus"] == "PASS" and report["rowsChecked"] > full["rowsChecked"] / 2


def test_reference_look_ups_ask_the_source_by_field_where_it_answers_right_and_read_whole_where_not(mongo):
    """The catch-up's look-ups (which documents hold one of these ids in a field): a query where the server's `$in`
    finds a value the field holds (probed on one document), a read of the field otherwise. nx-27017 answers
    `$in` right on a scalar field and matches no array element (real MongoDB matches both): both paths give
    what a scan of the documents gives."""
    from mongo2pg.migration.remigrate import _Finder
    from mongo2pg.source.readers import MongoSource

    rng = random.Random(3)
    ids = [ObjectId() for _ in range(40)]
    docs = [{"_id": ObjectId(), "ref": rng.choice([rng.choice(ids), str(rng.choice(ids)), None]),
             "arr": rng.sample(ids, rng.randrange(4))} for _ in range(300)]
    client = pymongo.MongoClient(mongo.uri)
    client.drop_database("online_finder")
    client.online_finder.refs.insert_many(docs)
    source = MongoSource(mongo.uri, "online_finder")
    try:
        finder = _Finder(source)
        for field in ("ref", "arr"):
            for asked in (set(ids[:10]), set(ids[5:25]) | {str(i) for i in ids[:5]}):  # the second: partly new
                got = finder.of("refs", field, asked)
                want = sorted({d["_id"] for d in docs
                               for v in (d[field] if isinstance(d[field], list) else [d[field]]) if v in asked}, key=str)
                assert got == want, field
        assert source._in_works == {("refs", "ref"): True, ("refs", "arr"): False}
    finally:
        source.close()


def test_the_systemd_unit_verifies_and_its_command_runs_the_service_from_its_environment_file(mongo, pg, tmp_path):
    """Where the host runs systemd, phase 15 installs the service as a unit (tasks/online_systemd.yml; the lab
    has no systemd to start it). Rendered as the playbook renders it: `systemd-analyze verify` finds nothing
    to say, no connection string is in the unit, and its ExecStart with its EnvironmentFile's variables (a
    password with a quote, a dollar and a backslash) starts the service, which SIGTERM stops."""
    import shlex
    import shutil

    from ansible_run import ROOT, render

    from mongo2pg.connect import pg_connect

    write_live(pymongo.MongoClient(mongo.uri), db="online_unit", scale=0.001, seed=2)
    target = pg.create_db("t_online_unit")
    with pg_connect(target, "test") as conn, conn.cursor() as cur:
        cur.execute("CREATE ROLE unit_user LOGIN PASSWORD 'q\"u$o\\te' SUPERUSER")
    conn.close()
    # $ as it is (a URI may hold it raw; the environment file escapes it), the quote and backslash encoded
    user_uri = f"postgresql://unit_user:q%22u$o%5Cte@127.0.0.1:{pg.port}/t_online_unit"
    folder = tmp_path / "online"
    folder.mkdir(mode=0o700)
    extra = {"migration_env": "unit", "artifacts_dir": str(tmp_path), "online_dir": str(folder), "mongo_db": "online_unit",
             "online_alarm_minutes": 5, "online_env_file": str(folder / "online.env"), "migration_pg_uri": user_uri,
             "online_engine": str(ROOT / ".venv" / "bin" / "mongo2pg"), "mongo_uri": mongo.uri}
    templates = ROOT / "playbooks" / "templates" / "online"
    unit = render(f"lookup('ansible.builtin.template', '{templates}/mongo2pg-online.service.j2')", tmp_path, extra)
    env = render(f"lookup('ansible.builtin.template', '{templates}/online.env.j2')", tmp_path, extra)
    assert "postgresql://" not in unit and "mongodb://" not in unit and f"EnvironmentFile={folder}/online.env" in unit
    (tmp_path / "mongo2pg-online-unit.service").write_text(unit)
    if shutil.which("systemd-analyze"):
        verify = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "mongo2pg-online-unit.service")],
                                capture_output=True, text=True)
        assert verify.returncode == 0 and verify.stderr.strip() == "", verify.stderr
    # systemd's rule for a double-quoted value: a backslash escapes one of " \\ ` $ (src/basic/env-file.c)
    variables = {k: re.sub(r'\\(["\\\\`$])', r"\1", v[1:-1])
                 for k, v in (line.split("=", 1) for line in env.splitlines() if line and not line.startswith("#"))}
    assert variables == {"MONGO2PG_PG_URI": user_uri, "MONGO2PG_MONGO_URI": mongo.uri}
    command = shlex.split(next(line for line in unit.splitlines() if line.startswith("ExecStart="))[len("ExecStart="):])
    service = subprocess.Popen(command, env={**os.environ, **variables}, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(120):
            status = json.loads((folder / "online-status.json").read_text()) if (folder / "online-status.json").exists() else {}
            if status.get("state") in ("capturing", "failed") or service.poll() is not None:
                break
            time.sleep(0.25)
        assert status.get("state") == "capturing", (status, service.poll())
    finally:
        service.send_signal(signal.SIGTERM)
        _, err = service.communicate(timeout=60)
    assert service.returncode == 0, err[-2000:]
    assert json.loads((folder / "online-status.json").read_text())["state"] == "stopped"
