"""The lossless rollback (real PostgreSQL, real nx-27017): writes made after go-live, by an application
role without any privilege on the mongo2pg schema, go back to MongoDB field by field; a reverse-sync
killed mid-way and rerun converges; reverse validation says PASS; no change, no write."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psycopg2
import pytest
from bson import ObjectId
from test_migrate import migrate_cli

from mongo2pg.connect import mongo_client
from mongo2pg.fixtures.write import write_live
from mongo2pg.ids import objectid_from_uuid, uuid_from_objectid
from mongo2pg.ops import monitor

DB = "revsync"


def cli(*args, check=True):
    r = subprocess.run([sys.executable, "-m", "mongo2pg", *args], capture_output=True, text=True)
    assert not check or r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


@pytest.fixture()
def golive(tmp_path, pg, mongo):
    """A migrated NextCRM (live source) with change capture installed, and an application login."""
    client = mongo_client(mongo.uri)
    client.drop_database(DB)
    write_live(client, db=DB, seed=9, scale=0.004)
    # a field the mapping does not know: it must survive the way back
    contact = next(c for c in client[DB]["crm_Contacts"].find() if len(c.get("opportunitiesIDs") or []) >= 2)
    client[DB]["crm_Contacts"].update_one({"_id": contact["_id"]}, {"$set": {"legacyNote": "keep me"}})
    contact["legacyNote"] = "keep me"
    pg_uri = pg.create_db("t_revsync")
    migrate_cli(tmp_path, pg_uri, "--mongo-uri", mongo.uri, "--db", DB)
    cli("capture", "install", "--pg-uri", pg_uri)
    admin = psycopg2.connect(pg_uri)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("DROP ROLE IF EXISTS app_writer")
        cur.execute("CREATE ROLE app_writer LOGIN PASSWORD 'app-pass'")
        cur.execute("GRANT USAGE ON SCHEMA public TO app_writer")
        cur.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO app_writer")
        cur.execute("DROP ROLE IF EXISTS watcher")
        cur.execute("CREATE ROLE watcher LOGIN PASSWORD 'w-pass' IN ROLE pg_monitor")
    admin.close()
    app = psycopg2.connect(pg.uri("t_revsync", "app_writer", "app-pass"))
    yield pg_uri, app, client, contact
    app.close()
    client.close()


def _one(cur, query, *args):
    cur.execute(query, args)
    return cur.fetchone()


def _docs(client):
    return {name: sorted(client[DB][name].find(), key=lambda d: d["_id"]) for name in client[DB].list_collection_names()}


def test_every_write_after_go_live_goes_back_to_mongodb_even_when_killed_midway(golive, pg, mongo):
    pg_uri, app, client, contact = golive
    mdb = client[DB]
    before = _docs(client)
    c_uuid = uuid_from_objectid(contact["_id"])
    with app.cursor() as cur:
        users = [u for (u,) in (cur.execute('SELECT id FROM "Users" ORDER BY id LIMIT 2') or cur.fetchall())]
        accounts = [a for (a,) in (cur.execute('SELECT id FROM "crm_Accounts" ORDER BY id LIMIT 2') or cur.fetchall())]
        # an account the application creates (a random UUID), with two watchers
        (new_account,) = _one(cur, 'INSERT INTO "crm_Accounts" (id, "__v", name) VALUES (gen_random_uuid(), 0, '
                                   "'Created after go-live') RETURNING id")
        for u in users:
            cur.execute('INSERT INTO "AccountWatchers" (account_id, user_id) VALUES (%s, %s)', (new_account, u))
        # a contact renamed, one opportunity link removed and another added
        cur.execute('UPDATE "crm_Contacts" SET last_name = %s WHERE id = %s', ("Renamed", c_uuid))
        (dropped,) = _one(cur, 'SELECT opportunity_id FROM "ContactsToOpportunities" WHERE contact_id = %s '
                               "ORDER BY opportunity_id LIMIT 1", c_uuid)
        cur.execute('DELETE FROM "ContactsToOpportunities" WHERE contact_id = %s AND opportunity_id = %s',
                    (c_uuid, dropped))
        (added,) = _one(cur, 'SELECT id FROM "crm_Opportunities" WHERE id NOT IN (SELECT opportunity_id FROM '
                             '"ContactsToOpportunities" WHERE contact_id = %s) AND id <> %s ORDER BY id LIMIT 1',
                        c_uuid, dropped)  # another one than the link just removed
        cur.execute('INSERT INTO "ContactsToOpportunities" (contact_id, opportunity_id) VALUES (%s, %s)', (c_uuid, added))
        # a comment and a task deleted
        (comment,) = _one(cur, 'SELECT id FROM "tasksComments" ORDER BY id LIMIT 1')
        cur.execute('DELETE FROM "tasksComments" WHERE id = %s', (comment,))
        (task,) = _one(cur, 'SELECT id FROM "Tasks" WHERE id NOT IN (SELECT task FROM "tasksComments" '
                            'WHERE task IS NOT NULL) ORDER BY id LIMIT 1')
        cur.execute('DELETE FROM "Tasks" WHERE id = %s', (task,))
        # a document linked to two accounts
        (document,) = _one(cur, 'INSERT INTO "Documents" (id, "__v", document_name, "document_file_mimeType", '
                                '"document_file_url") VALUES (gen_random_uuid(), 0, %s, %s, %s) RETURNING id',
                           "contract.pdf", "application/pdf", "https://files.example/contract.pdf")
        for a in accounts:
            cur.execute('INSERT INTO "DocumentsToAccounts" (document_id, account_id) VALUES (%s, %s)', (document, a))
        # a board shared with two users (a uuid[] column)
        (board,) = _one(cur, 'UPDATE "Boards" SET "sharedWith" = %s::uuid[] WHERE id = (SELECT id FROM "Boards" ORDER BY id LIMIT 1) '
                             "RETURNING id", [str(u) for u in users])
    app.commit()
    # monitoring (a pg_monitor login) sees what waits for a rollback
    waiting = monitor.snapshot(pg.uri("t_revsync", "watcher", "w-pass"))["database"]["changes_waiting"]
    assert waiting == 12  # one per row written: an account, 2 watchers, a contact, 2 links, 2 deletions, a document,
    # 2 links, a board

    # `record` shows the contact's change waiting for the way back, and its row differing from MongoDB now
    r = cli("record", str(contact["_id"]), "--pg-uri", pg_uri, "--mongo-uri", mongo.uri, "--db", DB, check=False)
    assert r.returncode == 1 and "DIFFERS" in r.stdout and "last_name: expected" in r.stdout, r.stdout
    assert "captured changes since go-live: 1 (1 not yet applied to MongoDB)" in r.stdout, r.stdout

    # killed after its first batch (one change a batch), then run again to the end
    proc = subprocess.Popen([sys.executable, "-m", "mongo2pg", "reverse-sync", "--pg-uri", pg_uri, "--mongo-uri",
                             mongo.uri, "--db", DB, "--batch", "1"], stdout=subprocess.PIPE, text=True)
    assert "batch 1:" in proc.stdout.readline()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    out = cli("reverse-sync", "--pg-uri", pg_uri, "--mongo-uri", mongo.uri, "--db", DB).stdout
    assert "none waits" in out

    with psycopg2.connect(pg_uri) as conn, conn.cursor() as cur:
        (account_oid,) = _one(cur, "SELECT oid FROM mongo2pg.reverse_ids WHERE uuid = %s", new_account)
        (document_oid,) = _one(cur, "SELECT oid FROM mongo2pg.reverse_ids WHERE uuid = %s", document)
    oid = {str(u): objectid_from_uuid(u) for u in users + accounts + [dropped, added]}
    account = mdb["crm_Accounts"].find_one({"_id": ObjectId(account_oid)})
    assert account["name"] == "Created after go-live" and account["__v"] == 0
    assert sorted(account["watchers"]) == sorted(oid[str(u)] for u in users)
    for u in users:
        assert ObjectId(account_oid) in mdb["Users"].find_one({"_id": oid[str(u)]})["watching_accountsIDs"]
    renamed = mdb["crm_Contacts"].find_one({"_id": contact["_id"]})
    assert renamed["last_name"] == "Renamed" and renamed["legacyNote"] == "keep me"
    links = set(renamed["opportunitiesIDs"])
    assert oid[str(added)] in links and oid[str(dropped)] not in links
    assert links == (set(contact["opportunitiesIDs"]) - {oid[str(dropped)]}) | {oid[str(added)]}
    # every other field of the contact is as it was in MongoDB (not rewritten from the row)
    unchanged = {k: v for k, v in renamed.items() if k not in ("last_name", "opportunitiesIDs")}
    assert unchanged == {k: v for k, v in contact.items() if k not in ("last_name", "opportunitiesIDs")}
    assert contact["_id"] in mdb["crm_Opportunities"].find_one({"_id": oid[str(added)]})["connected_contacts"]
    assert contact["_id"] not in (mdb["crm_Opportunities"].find_one({"_id": oid[str(dropped)]})
                                  .get("connected_contacts") or [])
    assert mdb["Tasks"].find_one({"_id": objectid_from_uuid(task)}) is None
    assert mdb["tasksComments"].count_documents({}) == len(before["tasksComments"]) - 1
    doc = mdb["Documents"].find_one({"_id": ObjectId(document_oid)})
    assert doc["document_name"] == "contract.pdf" and sorted(doc["accountsIDs"]) == sorted(oid[str(a)] for a in accounts)
    for a in accounts:
        assert ObjectId(document_oid) in mdb["crm_Accounts"].find_one({"_id": oid[str(a)]})["documentsIDs"]
    shared = mdb["Boards"].find_one({"_id": objectid_from_uuid(board)})
    assert shared["sharedWith"] == [oid[str(u)] for u in users]
    # nothing else moved: every collection the writes did not touch is as it was
    after = _docs(client)
    touched = {"crm_Accounts", "Users", "crm_Contacts", "crm_Opportunities", "Tasks", "tasksComments", "Documents",
               "Boards"}
    assert {k: v for k, v in after.items() if k not in touched} == {k: v for k, v in before.items() if k not in touched}

    r = cli("reverse-validate", "--pg-uri", pg_uri, "--mongo-uri", mongo.uri, "--db", DB)
    assert "reverse validation PASS" in r.stdout, r.stdout
    assert monitor.snapshot(pg.uri("t_revsync", "watcher", "w-pass"))["database"]["changes_waiting"] == 0
    # a document changed in MongoDB behind reverse-sync's back is found
    mdb["crm_Contacts"].update_one({"_id": contact["_id"]}, {"$set": {"last_name": "Tampered"}})
    r = cli("reverse-validate", "--pg-uri", pg_uri, "--mongo-uri", mongo.uri, "--db", DB, check=False)
    assert r.returncode == 1 and "reverse validation FAIL" in r.stdout and "fields differ: last_name" in r.stdout


def test_rollback_right_after_go_live_changes_nothing(golive, mongo):
    pg_uri, _, client, _ = golive
    assert "(0 added now)" in cli("capture", "install", "--pg-uri", pg_uri).stdout  # installing again: no change
    before = _docs(client)
    out = cli("reverse-sync", "--pg-uri", pg_uri, "--mongo-uri", mongo.uri, "--db", DB).stdout
    assert "done: 0 changes" in out
    assert _docs(client) == before
    assert "reverse validation PASS" in cli("reverse-validate", "--pg-uri", pg_uri, "--mongo-uri", mongo.uri,
                                            "--db", DB).stdout


def test_without_capture_reverse_sync_says_what_to_do(pg_db, mongo):
    r = cli("reverse-sync", "--pg-uri", pg_db, "--mongo-uri", mongo.uri, "--db", DB, check=False)
    assert r.returncode == 2 and "no change capture" in r.stderr and "rollback_mode=restore" in r.stderr
    assert "Traceback" not in r.stderr


def test_reverse_sync_rides_out_the_target_restarting_under_it(golive, pg, mongo):
    """PostgreSQL stopped (immediate) after reverse-sync's first batch and back 3 s later: it starts again on
    new connections (a change is consumed only once MongoDB has its writes) and ends with none waiting,
    MongoDB equal to PostgreSQL."""
    pg_uri, app, client, _ = golive
    with app.cursor() as cur:
        cur.execute('UPDATE "crm_Contacts" SET last_name = last_name || %s', (" (after go-live)",))
        renamed = cur.rowcount
    app.commit()
    proc = subprocess.Popen([sys.executable, "-m", "mongo2pg", "reverse-sync", "--pg-uri", pg_uri, "--mongo-uri",
                             mongo.uri, "--db", DB, "--batch", "5", "--retry-seconds", "60"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert "batch 1:" in proc.stdout.readline()
    pg.crash()
    time.sleep(3)
    pg.start_again()
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0 and "none waits" in out, out[-2000:] + err[-2000:]
    assert "connection lost" in err and "Traceback" not in err
    assert sum("(after go-live)" in (c.get("last_name") or "") for c in client[DB]["crm_Contacts"].find()) == renamed
    r = cli("reverse-validate", "--pg-uri", pg_uri, "--mongo-uri", mongo.uri, "--db", DB)
    assert "reverse validation PASS" in r.stdout, r.stdout
