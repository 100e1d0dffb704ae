"""The migration against real servers: PostgreSQL, nx-27017, mongodump-format files."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import psycopg2
import pymongo
import pytest
from bson import ObjectId
from servers import table_digests

from mongo2pg.connect import mongo_client
from mongo2pg.fixtures.write import write_dump, write_live
from mongo2pg.ids import uuid_from_objectid
from mongo2pg.mapping import load_mapping
from mongo2pg.ops import backup
from mongo2pg.source import dumpfmt
from mongo2pg.validation import ValidateOptions, validate

MAPPING = load_mapping("nextcrm")


def migrate_cli(tmp_path, pg_uri, *source, extra=(), check=True, wait=True, timeout=None):
    cmd = [sys.executable, "-m", "mongo2pg.cli", "migrate", *source, "--pg-uri", pg_uri,
           "--error-log", str(tmp_path / "errors.log"), "--checkpoint-file", str(tmp_path / "checkpoint.json"),
           "--progress-file", str(tmp_path / "progress.json"), "--summary-file", str(tmp_path / "summary.json"),
           *extra]
    if not wait:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check:
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


def test_clean_dump_migrates_every_record_and_validates(tmp_path, pg_db, clean_dump):
    r = migrate_cli(tmp_path, pg_db, "--dump", str(clean_dump))
    assert "Reconciled: source = loaded + rejected for every table" in r.stdout
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["totals"]["rejected"] == 0 and summary["totals"]["source"] == summary["totals"]["loaded"]
    assert not (tmp_path / "checkpoint.json").exists()  # deleted on success, as the runbook expects
    # Where the time went, stage by stage (make bench prints it): every stage the run went through, and the
    # load's worker-seconds no more than its wall time times the workers.
    stages = summary["stages"]
    for name in ("load (wall)", "load: read", "load: decode and transform", "load: COPY rows", "load: COPY link stage",
                 "load: checkpoint and commit", "dangling references", "junction build",
                 "indexes, foreign keys, ANALYZE (wall)", "finalize: index builds", "finalize: foreign key validation",
                 "finalize: ANALYZE"):
        assert stages.get(name, 0) > 0, name
    work = sum(v for k, v in stages.items() if k.startswith("load: "))
    assert work <= stages["load (wall)"] * 4 + 0.1 and stages["load (wall)"] <= summary["totals"]["seconds"]
    report = validate(ValidateOptions(pg_uri=pg_db, dump=str(clean_dump), report=str(tmp_path / "report.json"),
                                      error_log=str(tmp_path / "errors.log")))
    assert report["overallStatus"] == "PASS", report["failedLayers"]
    assert report["rowsChecked"] == summary["totals"]["source"]
    # A rerun of a completed migration changes nothing.
    before = table_digests(pg_db)
    migrate_cli(tmp_path, pg_db, "--dump", str(clean_dump))
    assert table_digests(pg_db) == before


def test_rows_equal_their_source_documents(tmp_path, pg_db, clean_dump):
    """A direct, hand-written comparison for one table with every column type, independent of both engines."""
    migrate_cli(tmp_path, pg_db, "--dump", str(clean_dump))
    db_dir = dumpfmt.resolve_db_dir(clean_dump)
    docs = {uuid_from_objectid(d["_id"]): d for d in dumpfmt.iter_documents(dumpfmt.list_collections(db_dir)["Invoices"])}
    conn = psycopg2.connect(pg_db)
    with conn.cursor() as cur:
        cur.execute('SELECT id::text, invoice_items, date_created, assigned_account_id::text, favorite, '
                    '"__v", invoice_number FROM "Invoices"')
        rows = cur.fetchall()
    conn.close()
    assert len(rows) == len(docs)
    for u, items, created, account, favorite, v, number in rows:
        d = docs[u]
        assert items == d.get("invoice_items")
        assert created == d["date_created"].replace(tzinfo=None)
        assert account == (uuid_from_objectid(d["assigned_account_id"]) if d.get("assigned_account_id") else None)
        assert favorite == d.get("favorite") and v == d.get("__v") and number == d.get("invoice_number")


def test_junction_tables_hold_the_union_of_both_sides(tmp_path, pg_db, clean_dump):
    migrate_cli(tmp_path, pg_db, "--dump", str(clean_dump))
    colls = dumpfmt.list_collections(dumpfmt.resolve_db_dir(clean_dump))
    forward = {(uuid_from_objectid(c), uuid_from_objectid(d["_id"]))
               for d in dumpfmt.iter_documents(colls["crm_Opportunities"]) for c in d.get("connected_contacts", [])}
    reverse = {(uuid_from_objectid(d["_id"]), uuid_from_objectid(o))
               for d in dumpfmt.iter_documents(colls["crm_Contacts"]) for o in d.get("opportunitiesIDs", [])}
    conn = psycopg2.connect(pg_db)
    with conn.cursor() as cur:
        cur.execute('SELECT contact_id::text, opportunity_id::text FROM "ContactsToOpportunities"')
        got = set(cur.fetchall())
    conn.close()
    assert forward - reverse and reverse - forward  # each side has links the other lacks
    assert got == forward | reverse


def test_dirty_data_is_rejected_by_reason_and_reconciles(tmp_path, pg_db, dirty_dump):
    sheet = tmp_path / "progress.csv"
    migrate_cli(tmp_path, pg_db, "--dump", str(dirty_dump), extra=["--progress-sheet", str(sheet)])
    summary = json.loads((tmp_path / "summary.json").read_text())
    for t in summary["tables"]:
        assert t["source"] == t["loaded"] + t["rejected"], t
    # the runbook's progress sheet: each table's last row (the run's end) is 100% with its records and its
    # errors, rejects found after the load included
    rows = list(csv.DictReader(sheet.read_text().splitlines()))
    assert list(rows[0]) == ["time", "phase", "table", "records", "total", "percent_complete", "records_per_second",
                             "errors"] and sheet.stat().st_mode & 0o777 == 0o600
    last = {r["table"]: r for r in rows}
    for t in summary["tables"]:
        if t["source"]:
            row = last[t["table"]]
            assert (row["phase"], int(row["records"]), int(row["total"]), row["percent_complete"],
                    int(row["errors"])) == ("complete", t["source"], t["source"], "100.0", t["rejected"]), (t, row)
    assert {r["phase"] for r in rows} >= {"load", "complete"}
    manifest = json.loads((dirty_dump / "sample-data-manifest.json").read_text())
    log = [json.loads(line) for line in (tmp_path / "errors.log").read_text().splitlines()]
    assert os.stat(tmp_path / "errors.log").st_mode & 0o777 == 0o600
    rejected = {(r["table"], r["_id"]): r for r in log if r["severity"] == "reject"}
    assert len(rejected) == summary["totals"]["rejected"] == len([r for r in log if r["severity"] == "reject"])
    expect = {"nul_in_string": "nul_in_string", "missing_required": "missing_required",
              "date_out_of_range": "date_out_of_range", "enum_invalid": "enum_invalid"}
    reasons = Counter()
    for kind, coll, _id, field in manifest["dirty_records"]:
        rec = rejected.get((coll, _id))
        if kind in expect:
            assert rec is not None and rec["reason"] == expect[kind] and rec["field"] == field, (kind, coll, _id)
            assert _id in rec["document"]  # the original document, in extended JSON
            reasons[kind] += 1
        elif kind == "number_as_string":
            assert rec is None or rec["field"] != field  # converted, not rejected for it
    assert all(reasons[k] > 0 for k in expect)
    report = validate(ValidateOptions(pg_uri=pg_db, dump=str(dirty_dump), report=str(tmp_path / "r.json"),
                                      error_log=str(tmp_path / "errors.log")))
    assert report["overallStatus"] == "PASS", report["failedLayers"]


def test_live_mongodb_source_gives_the_same_tables_as_its_dump(tmp_path, pg, mongo):
    client = mongo_client(mongo.uri)
    write_live(client, db="livetest", seed=5, scale=0.004)
    client.close()
    write_dump(tmp_path / "dump", db="livetest", seed=5, scale=0.004)
    live_db, dump_db = pg.create_db("t_live"), pg.create_db("t_live_dump")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    migrate_cli(tmp_path / "a", live_db, "--mongo-uri", mongo.uri, "--db", "livetest")
    migrate_cli(tmp_path / "b", dump_db, "--dump", str(tmp_path / "dump"), "--db", "livetest")
    assert table_digests(live_db) == table_digests(dump_db)


def _wait_for(path, predicate, proc, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            if predicate(json.loads(path.read_text())):
                return True
        except (OSError, ValueError):
            pass
        time.sleep(0.02)
    return False


@pytest.mark.parametrize("point", ["mid-table", "between-tables", "junctions"])
def test_resume_after_sigkill_gives_identical_tables(tmp_path, pg, clean_dump, point):
    reference = pg.create_db(f"t_ref_{point.replace('-', '_')}")
    (tmp_path / "ref").mkdir()
    migrate_cli(tmp_path / "ref", reference, "--dump", str(clean_dump), extra=("--batch-size", "300"))
    target = pg.create_db(f"t_kill_{point.replace('-', '_')}")
    predicates = {
        "mid-table": lambda p: any(0 < t.get("position", 0) < t.get("total", 0) for t in p.get("tables", {}).values()),
        "between-tables": lambda p: sum(1 for t in p.get("tables", {}).values() if t.get("done")) >= 3,
        "junctions": lambda p: p.get("phase") in ("junctions", "finalize"),
    }
    proc = migrate_cli(tmp_path, target, "--dump", str(clean_dump), extra=("--batch-size", "300", "--workers", "1"),
                       wait=False)
    hit = _wait_for(tmp_path / "progress.json", predicates[point], proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert hit, f"the run ended before reaching {point}"
    r = migrate_cli(tmp_path, target, "--dump", str(clean_dump), extra=("--batch-size", "300"))
    assert "Reconciled" in r.stdout
    assert table_digests(target) == table_digests(reference)
    log = (tmp_path / "errors.log").read_text().splitlines()
    assert len(log) == len(set(log))  # no duplicated error lines after the resume


def test_big_collections_load_as_ranges_and_a_killed_range_resumes(tmp_path, pg, clean_dump):
    """Collections of at least 2 x --split-documents load as ordinal ranges side by side; a kill in the
    middle of a range, then a rerun with another worker count (the stored split holds), gives the tables
    of a run that split nothing."""
    reference = pg.create_db("t_ranges_ref")
    (tmp_path / "ref").mkdir()
    migrate_cli(tmp_path / "ref", reference, "--dump", str(clean_dump), extra=("--split-documents", "0"))
    target = pg.create_db("t_ranges")
    split = ("--split-documents", "1000", "--batch-size", "200")
    proc = migrate_cli(tmp_path, target, "--dump", str(clean_dump), extra=(*split, "--workers", "2"), wait=False)
    hit = _wait_for(tmp_path / "progress.json", lambda p: any(
        "#" in name and 0 < t.get("position", 0) < t.get("total", 0) for name, t in p.get("tables", {}).items()), proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert hit, "the run ended before a range was half loaded"
    ranges = {name: t["total"] for name, t in json.loads((tmp_path / "progress.json").read_text())["tables"].items()
              if "#" in name}
    # tasksComments (4,650 documents) and Tasks (3,100) split in two; crm_Accounts_Tasks (1,800) does not
    assert sum(v for k, v in ranges.items() if k.startswith("tasksComments#")) in (4650, 0) and ranges
    r = migrate_cli(tmp_path, target, "--dump", str(clean_dump), extra=(*split, "--workers", "1"))
    assert "Reconciled" in r.stdout
    assert table_digests(target) == table_digests(reference)
    summary = json.loads((tmp_path / "summary.json").read_text())
    tasks = next(t for t in summary["tables"] if t["table"] == "Tasks")
    assert tasks["source"] == tasks["loaded"] == 3100
    conn = psycopg2.connect(target)
    with conn.cursor() as cur:
        cur.execute("SELECT step FROM mongo2pg.checkpoint WHERE step LIKE 'table:Tasks%' ORDER BY 1")
        assert [r[0] for r in cur.fetchall()] == ["table:Tasks", "table:Tasks#0", "table:Tasks#1"]
    conn.close()


def test_postgresql_restart_mid_run_completes_on_its_own(tmp_path, pg, clean_dump):
    target = pg.create_db("t_restart")
    proc = migrate_cli(tmp_path, target, "--dump", str(clean_dump), extra=("--batch-size", "200", "--workers", "1"),
                       wait=False)
    hit = _wait_for(tmp_path / "progress.json", lambda p: p.get("records_done", 0) > 2000, proc)
    assert hit
    pg.restart("fast")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-2000:] + err[-2000:]
    assert "retry" in err and "Reconciled" in out
    report = validate(ValidateOptions(pg_uri=target, dump=str(clean_dump), report=str(tmp_path / "r.json"),
                                      error_log=str(tmp_path / "errors.log")))
    assert report["overallStatus"] == "PASS"


def test_fresh_archives_the_old_checkpoint_and_a_dirty_target_is_refused(tmp_path, pg_db, clean_dump):
    conn = psycopg2.connect(pg_db)
    from mongo2pg import schema

    schema.apply(conn, MAPPING)
    with conn.cursor() as cur:
        cur.execute("""INSERT INTO "Users" (id, "__v", email, is_account_admin, is_admin, created_on, "userStatus",
                       "userLanguage") VALUES ('65a1b2c3-d4e5-8000-8000-f60718293a4b', 0, 'x@y', false, false, now(),
                       'ACTIVE', 'en')""")
    conn.commit()
    conn.close()
    r = migrate_cli(tmp_path, pg_db, "--dump", str(clean_dump), check=False)
    assert r.returncode == 2 and "already holds rows" in r.stderr and "--fresh" in r.stderr
    (tmp_path / "checkpoint.json").write_text("{}")
    migrate_cli(tmp_path, pg_db, "--dump", str(clean_dump), extra=("--fresh",))
    assert list(tmp_path.glob("checkpoint.*.json"))  # archived, not deleted


def test_fresh_over_a_finalized_target_gives_the_same_tables(tmp_path, pg_db, clean_dump):
    """A finalized target has foreign keys; --fresh must load as into an empty schema, in any table order."""
    migrate_cli(tmp_path, pg_db, "--dump", str(clean_dump), extra=("--workers", "2"))
    first = table_digests(pg_db)
    migrate_cli(tmp_path, pg_db, "--dump", str(clean_dump), extra=("--fresh", "--workers", "2"))
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["totals"]["rejected"] == 0 and summary["totals"]["reconciled"]
    assert table_digests(pg_db) == first


def test_a_second_migration_on_the_same_target_is_refused_while_one_runs(tmp_path, pg_db, clean_dump):
    running = psycopg2.connect(pg_db, application_name="mongo2pg")  # holds the lock as a running migration does
    with running.cursor() as cur:
        cur.execute("SELECT pg_advisory_lock(hashtext('mongo2pg.migrate'))")
    r = migrate_cli(tmp_path, pg_db, "--dump", str(clean_dump), check=False)
    assert r.returncode == 2 and "another migration is running against this database" in r.stderr
    assert "backend pid" in r.stderr
    running.close()  # the other run ends (or dies): the lock goes with its session
    migrate_cli(tmp_path, pg_db, "--dump", str(clean_dump))


KEEP_MAPPING = """
name: keep
tables:
  parent:
    collection: parent
    columns:
      - {name: id, source: _id, type: uuid, primary_key: true}
  child:
    collection: child
    columns:
      - {name: id, source: _id, type: uuid, primary_key: true}
      - {name: parent, type: uuid, references: parent, on_dangling: keep}
"""


def test_a_reference_kept_dangling_by_policy_keeps_its_value_and_a_not_valid_foreign_key(tmp_path, pg_db):
    (tmp_path / "keep.yml").write_text(KEEP_MAPPING)
    writer = dumpfmt.DumpWriter(tmp_path / "dump", "nextcrm")
    parent, ghost = ObjectId("650000000000000000000001"), ObjectId("6500000000000000000000ff")
    writer.write_collection("parent", [{"_id": parent}])
    writer.write_collection("child", [{"_id": ObjectId("660000000000000000000001"), "parent": parent},
                                      {"_id": ObjectId("660000000000000000000002"), "parent": ghost}])
    migrate_cli(tmp_path, pg_db, "--dump", str(tmp_path / "dump"), extra=("--mapping", str(tmp_path / "keep.yml")))
    conn = psycopg2.connect(pg_db)
    with conn.cursor() as cur:
        cur.execute("SELECT parent::text FROM child ORDER BY id")
        assert [r[0] for r in cur.fetchall()] == [uuid_from_objectid(str(parent)), uuid_from_objectid(str(ghost))]
        cur.execute("SELECT convalidated FROM pg_constraint WHERE conname = 'child_parent_fkey'")
        assert cur.fetchone() == (False,)  # enforced for new rows, not checked against the kept one
    conn.close()
    log = [json.loads(line) for line in (tmp_path / "errors.log").read_text().splitlines()]
    assert [(r["severity"], r["reason"]) for r in log] == [("fixup", "dangling_reference_kept")]


def _phase(tmp_path) -> str | None:
    try:
        return json.loads((tmp_path / "progress.json").read_text()).get("phase")
    except (OSError, ValueError):
        return None


@pytest.mark.slow
def test_the_lock_holds_through_the_post_load_stages_and_status_says_unreconciled_when_it_is(tmp_path, pg_db,
                                                                                              mongo, clean_dump):
    """A second migration is refused while the first builds its junctions (held there by a lock the test
    takes on a junction table), and a run that ends unreconciled (a document added to the live source
    meanwhile) is not reported `complete` by `status`."""
    backup.restore_database(clean_dump, mongo.uri, db="nextcrm", target_db="lock_run", drop=True)
    source = ("--mongo-uri", mongo.uri, "--db", "lock_run")
    r = subprocess.run([sys.executable, "-m", "mongo2pg.cli", "schema", "apply", "--pg-uri", pg_db],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    holder = psycopg2.connect(pg_db)
    with holder.cursor() as cur:
        # SHARE: the run's reads pass, its junction build (ALTER, INSERT) waits until the rollback below
        cur.execute('LOCK TABLE "DocumentsToInvoices" IN SHARE MODE')
    first = migrate_cli(tmp_path, pg_db, *source, extra=("--quiet",), wait=False)
    try:
        deadline = time.monotonic() + 120
        while _phase(tmp_path) != "junctions" and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _phase(tmp_path) == "junctions", first.communicate()[1][-2000:] if first.poll() is not None else ""
        second = tmp_path / "second"
        second.mkdir()
        r = migrate_cli(second, pg_db, *source, check=False, timeout=60)  # not left to wait behind the first
        assert r.returncode == 2 and "another migration is running against this database" in r.stderr, r.stderr
        client = pymongo.MongoClient(mongo.uri)
        client["lock_run"]["crm_Accounts"].insert_one({"_id": ObjectId(), "name": "written during the migration"})
        client.close()
    finally:
        holder.rollback()
        holder.close()
    out, err = first.communicate(timeout=300)
    assert first.returncode == 1, err[-2000:]  # unreconciled: the source has one document more than was read
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "unreconciled"
    r = subprocess.run([sys.executable, "-m", "mongo2pg.cli", "status", "--pg-uri", pg_db], capture_output=True,
                       text=True)
    assert r.returncode == 0 and json.loads(r.stdout)["state"] == "unreconciled", r.stdout
