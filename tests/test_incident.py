"""The P1 "data inconsistency reported" procedure on real servers (nx-27017, PostgreSQL): `mongo2pg record`
on a loaded, a rejected, a fixed-up and a corrupted record; `mongo2pg remigrate` of a rejected record once its
source is fixed, its junction links back from both sides' arrays, validation PASS after."""

from __future__ import annotations

import json
import subprocess
import sys

import psycopg2
import pytest
from ansible_run import ROOT, playbook, recap
from bson import ObjectId
from test_migrate import migrate_cli

from mongo2pg.connect import mongo_client
from mongo2pg.fixtures.write import write_live
from mongo2pg.ids import uuid_from_objectid

DB = "incident"
OPS = str(ROOT / "playbooks" / "ops.yml")


def cli(*args, check=True):
    r = subprocess.run([sys.executable, "-m", "mongo2pg", *args], capture_output=True, text=True)
    assert not check or r.returncode in (0, 1), r.stdout[-3000:] + r.stderr[-3000:]
    assert "Traceback" not in r.stderr
    return r


@pytest.fixture()
def migrated(tmp_path, pg, mongo):
    """A live NextCRM whose one contact, linked to opportunities from both sides' arrays, lost its required
    last_name before the migration (so it is rejected and its links dropped), migrated."""
    client = mongo_client(mongo.uri)
    client.drop_database(DB)
    write_live(client, db=DB, seed=21, scale=0.004)
    contacts, opportunities = client[DB]["crm_Contacts"], client[DB]["crm_Opportunities"]
    held = {e for o in opportunities.find() for e in o.get("connected_contacts") or []}
    broken = next(c for c in contacts.find() if len(c.get("opportunitiesIDs") or []) >= 2 and c["_id"] in held)
    contacts.update_one({"_id": broken["_id"]}, {"$unset": {"last_name": ""}})
    # an account some other contacts reference, with a __v no integer: rejected, their accountsIDs set NULL
    refs: dict = {}
    for c in contacts.find():
        if c["_id"] != broken["_id"] and c.get("accountsIDs"):
            refs.setdefault(c["accountsIDs"], []).append(c["_id"])
    account = max(refs, key=lambda a: len(refs[a]))
    client[DB]["crm_Accounts"].update_one({"_id": account}, {"$set": {"__v": "not a number"}})
    # another one assigned to a user who does not exist: loaded, its assigned_to set NULL (a fix-up)
    dangling = next(c for c in contacts.find() if c["_id"] != broken["_id"] and c["_id"] not in refs[account])
    contacts.update_one({"_id": dangling["_id"]}, {"$set": {"assigned_to": ObjectId("0000000000000000000000aa")}})
    pg_uri = pg.create_db("t_incident")
    migrate_cli(tmp_path, pg_uri, "--mongo-uri", mongo.uri, "--db", DB, extra=("--quiet",))
    common = ["--pg-uri", pg_uri, "--mongo-uri", mongo.uri, "--db", DB, "--error-log", str(tmp_path / "errors.log")]
    yield pg_uri, client, broken, common, (account, refs[account])
    client.close()


def _links(pg_uri, contact_uuid) -> set[str]:
    conn = psycopg2.connect(pg_uri)
    with conn.cursor() as cur:
        cur.execute('SELECT opportunity_id::text FROM "ContactsToOpportunities" WHERE contact_id = %s', (contact_uuid,))
        out = {r[0] for r in cur.fetchall()}
    conn.close()
    return out


def test_record_tells_a_loaded_a_rejected_a_fixed_up_and_a_corrupted_record(tmp_path, migrated):
    pg_uri, client, broken, common, _ = migrated
    log = [json.loads(line) for line in (tmp_path / "errors.log").read_text().splitlines()]
    # loaded, by its ObjectId and by its UUID: the same answer
    loaded = next(c for c in client[DB]["crm_Contacts"].find() if c["_id"] != broken["_id"]
                  and len(c.get("opportunitiesIDs") or []) >= 1)
    for given in (str(loaded["_id"]), uuid_from_objectid(loaded["_id"])):
        r = cli("record", given, *common)
        assert r.returncode == 0 and "in crm_Contacts" in r.stdout and ": CONSISTENT" in r.stdout, r.stdout
        assert "fields:   0 differ" in r.stdout and "links ContactsToOpportunities:" in r.stdout
    # rejected: the reason from the log
    r = cli("record", str(broken["_id"]), *common)
    assert r.returncode == 0 and ": REJECTED" in r.stdout and "reject missing_required last_name" in r.stdout, r.stdout
    # fixed up (a dangling reference set NULL): consistent by the log's account of it
    fixup = next(e for e in log if e["severity"] == "fixup" and e["reason"] == "dangling_reference")
    r = cli("record", fixup["_id"], *common, "--json", str(tmp_path / "record.json"))
    assert r.returncode == 0 and ": CONSISTENT" in r.stdout and "fixup dangling_reference" in r.stdout, r.stdout
    found = json.loads((tmp_path / "record.json").read_text())
    assert found[0]["table"] == fixup["table"] and found[0]["row"] is not None
    # corrupted in the target: the field named, expected and found
    conn = psycopg2.connect(pg_uri)
    with conn.cursor() as cur:
        cur.execute('UPDATE "crm_Contacts" SET last_name = %s WHERE id = %s', ("Tampered", uuid_from_objectid(loaded["_id"])))
    conn.commit()
    conn.close()
    r = cli("record", str(loaded["_id"]), *common)
    assert r.returncode == 1 and ": DIFFERS" in r.stdout
    assert f"last_name: expected {loaded['last_name']!r}, found 'Tampered'" in r.stdout, r.stdout
    # an id nobody has
    r = cli("record", "0123456789abcdef01234567", *common, check=False)
    assert r.returncode == 2 and "NOT FOUND" in r.stdout


def test_remigrate_loads_a_fixed_reject_with_its_links_and_validation_passes(tmp_path, migrated):
    pg_uri, client, broken, common, _ = migrated
    uuid = uuid_from_objectid(broken["_id"])
    assert _links(pg_uri, uuid) == set()
    # not fixed yet: still rejected, said so, exit 1
    r = cli("remigrate", "--rejects", "--reason", "missing_required", *common)
    assert r.returncode == 1 and f"still rejected: crm_Contacts {broken['_id']}: missing_required last_name" in r.stdout
    client[DB]["crm_Contacts"].update_one({"_id": broken["_id"]}, {"$set": {"last_name": "Fixed"}})
    r = cli("remigrate", str(broken["_id"]), *common)
    assert r.returncode == 0 and f"loaded: crm_Contacts {broken['_id']}" in r.stdout, r.stdout
    # the links both sides' arrays hold, where the other row exists
    own = {uuid_from_objectid(o) for o in broken["opportunitiesIDs"]}
    theirs = {uuid_from_objectid(o["_id"]) for o in client[DB]["crm_Opportunities"].find()
              if broken["_id"] in (o.get("connected_contacts") or [])}
    conn = psycopg2.connect(pg_uri)
    with conn.cursor() as cur:
        cur.execute('SELECT id::text FROM "crm_Opportunities" WHERE id::text = ANY(%s)', (sorted(own | theirs),))
        present = {row[0] for row in cur.fetchall()}
    conn.close()
    assert theirs and _links(pg_uri, uuid) == (own | theirs) & present
    assert ": CONSISTENT" in cli("record", str(broken["_id"]), *common).stdout
    v = cli("validate", *common, "--report", str(tmp_path / "report.json"))
    report = json.loads((tmp_path / "report.json").read_text())
    assert v.returncode == 0 and report["overallStatus"] == "PASS", v.stdout[-3000:]
    # again: the same rows (a remigrate is idempotent)
    before = _links(pg_uri, uuid)
    assert cli("remigrate", str(broken["_id"]), *common).returncode == 0 and _links(pg_uri, uuid) == before


def test_remigrating_a_parent_gives_its_children_their_reference_back(tmp_path, migrated):
    pg_uri, client, _, common, (account, referrers) = migrated

    def referring() -> set[str]:
        conn = psycopg2.connect(pg_uri)
        with conn.cursor() as cur:
            cur.execute('SELECT id::text FROM "crm_Contacts" WHERE "accountsIDs" = %s', (uuid_from_objectid(account),))
            out = {r[0] for r in cur.fetchall()}
        conn.close()
        return out

    assert referring() == set() and len(referrers) >= 1
    client[DB]["crm_Accounts"].update_one({"_id": account}, {"$set": {"__v": 0}})
    r = cli("remigrate", "--rejects", "--reason", "type_mismatch", *common)
    assert r.returncode == 0 and f"loaded: crm_Accounts {account}" in r.stdout, r.stdout
    assert all(f"loaded: crm_Contacts {c}" in r.stdout for c in referrers), r.stdout
    assert referring() == {uuid_from_objectid(c) for c in referrers}
    assert ": CONSISTENT" in cli("record", str(referrers[0]), *common).stdout
    v = cli("validate", *common, "--report", str(tmp_path / "report.json"))
    report = json.loads((tmp_path / "report.json").read_text())
    assert v.returncode == 0 and report["overallStatus"] == "PASS", v.stdout[-3000:]


def test_the_ops_playbook_runs_both_by_tag_without_a_uri_in_its_output(tmp_path, migrated, mongo, pg):
    pg_uri, client, broken, _, _ = migrated
    extra = ["-e", f"ops_pg_uri={pg_uri}", "-e", f"mongo_uri={mongo.uri}", "-e", f"mongo_db={DB}",
             "-e", f"artifacts_dir={tmp_path}"]
    r = playbook(OPS, "--tags", "record", "-e", f"record_id={broken['_id']}", *extra)
    assert r.returncode == 0 and "REJECTED" in r.stdout and "missing_required" in r.stdout, r.stdout[-3000:]
    client[DB]["crm_Contacts"].update_one({"_id": broken["_id"]}, {"$set": {"last_name": "Fixed"}})
    r = playbook(OPS, "--tags", "remigrate", "-e", "remigrate_reason=missing_required", *extra, "-v")
    assert r.returncode == 0 and "loaded: crm_Contacts" in r.stdout and str(broken["_id"]) in r.stdout, r.stdout[-3000:]
    assert recap(r.stdout)["changed"] == 1
    assert pg.password not in r.stdout + r.stderr and "remigrated" in (tmp_path / "migration-errors.log").read_text()
