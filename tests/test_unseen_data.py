"""Data the sample generator does not make: duplicated unique values, an index PostgreSQL refuses, and
documents of every size MongoDB allows. Nothing crashes, nothing is lost, memory follows the bounds."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import bson
import psycopg2
import pytest
from bson import ObjectId
from large_docs import LARGE_DOCUMENTS_MAPPING, write_large_documents
from peak import mongo2pg_measured

from mongo2pg.ids import uuid_from_objectid
from mongo2pg.ops import backup
from mongo2pg.source import dumpfmt

NEXTCRM = Path(__file__).resolve().parent.parent / "mongo2pg" / "mappings" / "nextcrm.yml"


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mongo2pg.cli", *args], capture_output=True, text=True)


def _migrate(work: Path, dump: Path, uri: str, *extra: str) -> subprocess.CompletedProcess:
    return _cli("migrate", "--dump", str(dump), "--pg-uri", uri, "--quiet", "--error-log", str(work / "errors.log"),
                "--checkpoint-file", str(work / "cp.json"), "--summary-file", str(work / "summary.json"), *extra)


def _validate(work: Path, dump: Path, uri: str, *extra: str) -> subprocess.CompletedProcess:
    return _cli("validate", "--dump", str(dump), "--pg-uri", uri, "--error-log", str(work / "errors.log"),
                "--report", str(work / "report.json"), *extra)


def _errors(work: Path) -> list[dict]:
    return [json.loads(line) for line in (work / "errors.log").read_text().splitlines()]


def _one(uri: str, query: str, args=()):
    conn = psycopg2.connect(uri)
    with conn.cursor() as cur:
        cur.execute(query, args)
        row = cur.fetchone()
    conn.commit()
    conn.close()
    return row


@pytest.fixture
def duplicated_emails(clean_dump, tmp_path) -> tuple[Path, str, ObjectId, ObjectId]:
    """The clean sample with a user whose email two more documents share: one with an _id smaller than
    the original's (it keeps the email), one larger. Returns (dump, email, the smallest _id, the original's)."""
    dump = tmp_path / "dump"
    shutil.copytree(clean_dump, dump)
    users = dump / "nextcrm" / "Users.bson"
    original = bson.decode(next(dumpfmt.iter_raw(dumpfmt.list_collections(dump / "nextcrm")["Users"])))
    smallest, larger = ObjectId("000000000000000000000001"), ObjectId("ffffffffffffffffffffffff")
    with users.open("ab") as f:
        for oid in (larger, smallest):
            f.write(bson.encode({**original, "_id": oid}))
    return dump, original["email"], smallest, original["_id"]


def test_a_duplicated_unique_value_is_rejected_keeping_the_smallest_id(duplicated_emails, tmp_path, pg_db):
    dump, email, smallest, original = duplicated_emails
    r = _migrate(tmp_path, dump, pg_db)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    dups = [e for e in _errors(tmp_path) if e["reason"] == "duplicate_key"]
    assert {e["_id"] for e in dups} == {str(original), "ffffffffffffffffffffffff"}
    assert all(e["table"] == "Users" and e["field"] == "email" and str(smallest) in e["message"]
               and "Users_email_key" in e["message"] and e["document"] for e in dups)
    assert _one(pg_db, 'SELECT id::text FROM "Users" WHERE email = %s', (email,)) == (uuid_from_objectid(str(smallest)),)
    summary = json.loads((tmp_path / "summary.json").read_text())
    users = next(t for t in summary["tables"] if t["table"] == "Users")
    assert summary["status"] == "complete" and users["source"] == users["loaded"] + users["rejected"]
    assert users["rejected"] >= 2
    # validation accounts for both rejects; the records that referenced the original user settled by policy
    v = _validate(tmp_path, dump, pg_db)
    assert v.returncode == 0, v.stdout[-3000:]


def test_on_duplicate_fail_stops_before_loading_and_lists_the_duplicates(duplicated_emails, tmp_path, pg_db):
    dump, _, _, original = duplicated_emails
    mapping = tmp_path / "strict.yml"
    mapping.write_text(NEXTCRM.read_text() + "\non_duplicate: fail\n")
    r = _migrate(tmp_path, dump, pg_db, "--mapping", str(mapping))
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert "2 document(s) duplicate a unique key" in r.stderr and str(original) in r.stderr
    assert "Users_email_key" in r.stderr and "on_duplicate: reject" in r.stderr
    assert _one(pg_db, "SELECT count(*) FROM mongo2pg.checkpoint") == (0,)  # nothing was loaded
    assert _one(pg_db, 'SELECT count(*) FROM "Users"') == (0,)


JSON_UNIQUE = """
version: 1
name: jsonkeys
tables:
  settings:
    collection: settings
    columns:
      - {name: id, source: _id, type: uuid, primary_key: true}
      - {name: prefs, type: jsonb}
    indexes:
      - {name: settings_prefs_key, columns: [prefs], unique: true}
"""


def test_an_index_postgresql_refuses_is_one_line_and_the_run_resumes_once_fixed(tmp_path, pg_db):
    """Two jsonb values whose texts differ (key order) but which PostgreSQL holds equal: the duplicate is
    found only by the unique index itself. One line, exit 1, and a rerun after the fix finishes."""
    (tmp_path / "m.yml").write_text(JSON_UNIQUE)
    first, second = ObjectId(), ObjectId()
    dumpfmt.DumpWriter(tmp_path / "dump", "nextcrm").write_collection(
        "settings", [{"_id": first, "prefs": {"a": 1, "b": 2}}, {"_id": second, "prefs": {"b": 2, "a": 1}}])
    args = ("--mapping", str(tmp_path / "m.yml"))
    r = _migrate(tmp_path, tmp_path / "dump", pg_db, *args)
    assert r.returncode == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr
    assert "table settings: PostgreSQL refused settings_prefs_key" in lines[0]
    assert "could not create unique index" in lines[0] and "rerun" in lines[0]
    # the operator's fix in the target; the rerun resumes at the indexes (the load is not repeated)
    _one(pg_db, "UPDATE settings SET prefs = '{\"fixed\": true}' WHERE id = %s RETURNING id",
         (uuid_from_objectid(str(second)),))
    r = _migrate(tmp_path, tmp_path / "dump", pg_db, *args)
    assert r.returncode == 0, r.stderr
    assert _one(pg_db, "SELECT count(*) FROM pg_indexes WHERE indexname = 'settings_prefs_key'") == (1,)
    assert _one(pg_db, "SELECT prefs::text FROM settings WHERE id = %s", (uuid_from_objectid(str(second)),)) == (
        '{"fixed": true}',)


def test_a_dump_of_a_long_string_read_through_the_wire_server(mongo, tmp_path):
    """pymongo hands some replies' raw documents as memoryviews: the backup writes them as they are."""
    client = backup.mongo_client(mongo.uri)
    docs = [{"_id": ObjectId(), "content": "x" * 70_000}, {"_id": ObjectId(), "content": "é" * 35_000, "n": 1}]
    client["long_strings"]["Tasks"].insert_many(docs)
    client.close()
    r = _cli("dump", "--mongo-uri", mongo.uri, "--db", "long_strings", "--out", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    raw = list(dumpfmt.iter_raw(dumpfmt.list_collections(tmp_path / "out" / "long_strings")["Tasks"]))
    assert raw == [bson.encode(d) for d in docs]


@pytest.mark.slow
def test_a_thousand_one_megabyte_documents_migrate_and_validate_in_bounded_memory(tmp_path, pg_db):
    write_large_documents(tmp_path / "dump", 1000, 1 << 20)
    (tmp_path / "blobs.yml").write_text(LARGE_DOCUMENTS_MAPPING)
    common = ("--dump", str(tmp_path / "dump"), "--pg-uri", pg_db, "--mapping", str(tmp_path / "blobs.yml"),
              "--error-log", str(tmp_path / "errors.log"))
    m, migrate_peak = mongo2pg_measured("migrate", *common, "--quiet", "--checkpoint-file", str(tmp_path / "cp.json"),
                                        "--summary-file", str(tmp_path / "summary.json"))
    assert m.returncode == 0, m.stderr[-2000:]
    totals = json.loads((tmp_path / "summary.json").read_text())["totals"]
    assert totals["loaded"] == 1000 and totals["rejected"] == 0
    v, validate_peak = mongo2pg_measured("validate", *common, "--report", str(tmp_path / "report.json"))
    assert v.returncode == 0, v.stdout[-2000:]
    assert json.loads((tmp_path / "report.json").read_text())["rowsChecked"] == 1000
    print(f"peak RSS: migrate {migrate_peak:.0f} MB, validate {validate_peak:.0f} MB")
    assert migrate_peak < 500 and validate_peak < 500, (migrate_peak, validate_peak)


class _Lines(list):
    """A batch's COPY lines that can be watched with a weak reference (a plain list cannot)."""


@pytest.mark.parametrize("refused", [False, True], ids=["copied", "bisected"])
def test_a_copied_batch_is_freed_at_once_not_by_the_cycle_collector(pg_db, refused):
    """The load's workers run the cycle collector rarely (readers.tune_gc_for_documents): a batch kept
    alive by a reference cycle piled up with the next ones (a worker grew past 900 MB on production-sized
    documents). A batch must be freed as soon as nothing uses it, also after a bisection for a bad line."""
    import gc
    import weakref

    from mongo2pg.migration.copy import copy_rows

    conn = psycopg2.connect(pg_db)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE batch (n integer, note text)")
        lines = _Lines(f"{i}\tline {i}\n" for i in range(200))
        if refused:
            lines[77] = "not a number\tbad\n"
        watched = weakref.ref(lines)
        gc.disable()
        try:
            refused_lines = copy_rows(cur, "batch", ["n", "note"], lines)
            del lines
            assert watched() is None, "the batch's lines outlived copy_rows"
        finally:
            gc.enable()
        cur.execute("SELECT count(*) FROM batch")
        assert cur.fetchone()[0] == (199 if refused else 200)
    assert [i for i, _ in refused_lines] == ([77] if refused else [])
    conn.close()


def test_production_sized_documents_migrate_and_validate_in_bounded_memory(tmp_path, pg_db):
    """The runbook's weight of document (sample-data --profile runbook-bytes: ~9.8 KB on average, long
    comments and task contents, runs of consecutive 1-5 MB invoices and documents): PASS, every process
    under 500 MB."""
    from mongo2pg.fixtures.write import write_dump

    dump = tmp_path / "dump"
    manifest = write_dump(dump, scale=0.03, seed=3, profile="runbook-bytes")
    assert manifest.profile == "runbook-bytes"
    sizes = sorted(len(raw) for c in dumpfmt.list_collections(dump / "nextcrm").values() for raw in dumpfmt.iter_raw(c))
    assert sizes[-1] > 1 << 20 and sum(sizes) / len(sizes) > 6_000, (sizes[-1], sum(sizes) / len(sizes))
    m, migrate_peak = mongo2pg_measured("migrate", "--dump", str(dump), "--pg-uri", pg_db, "--quiet",
                                        "--error-log", str(tmp_path / "errors.log"), "--checkpoint-file",
                                        str(tmp_path / "cp.json"), "--summary-file", str(tmp_path / "summary.json"))
    assert m.returncode == 0, m.stderr[-2000:]
    totals = json.loads((tmp_path / "summary.json").read_text())["totals"]
    assert totals["loaded"] == sum(manifest.counts.values()) and totals["rejected"] == 0
    v, validate_peak = mongo2pg_measured("validate", "--dump", str(dump), "--pg-uri", pg_db, "--error-log",
                                         str(tmp_path / "errors.log"), "--report", str(tmp_path / "report.json"))
    report = json.loads((tmp_path / "report.json").read_text())
    assert v.returncode == 0 and report["overallStatus"] == "PASS", v.stdout[-2000:]
    assert report["rowsChecked"] == totals["source"]
    print(f"peak RSS: migrate {migrate_peak:.0f} MB, validate {validate_peak:.0f} MB")
    assert migrate_peak < 500 and validate_peak < 500, (migrate_peak, validate_peak)


UNIQUE_EMAILS = """
version: 1
name: people
tables:
  people:
    collection: people
    columns:
      - {name: id, source: _id, type: uuid, primary_key: true}
      - {name: email, type: text}
      - {name: name, type: text, required: true}
    indexes:
      - {name: people_email_key, columns: [email], unique: true}
"""


def test_a_document_rejected_for_another_reason_keeps_no_unique_value(tmp_path, pg_db):
    """The smallest _id lacks a required field: it is rejected for that, and the next document with the
    same email keeps it (rather than losing it to a document that is not loaded)."""
    (tmp_path / "m.yml").write_text(UNIQUE_EMAILS)
    first, second, third = (ObjectId(f"{i:024x}") for i in (1, 2, 3))
    dumpfmt.DumpWriter(tmp_path / "dump", "nextcrm").write_collection("people", [
        {"_id": first, "email": "a@x.io"}, {"_id": second, "email": "a@x.io", "name": "kept"},
        {"_id": third, "email": "a@x.io", "name": "duplicate"}])
    r = _migrate(tmp_path, tmp_path / "dump", pg_db, "--mapping", str(tmp_path / "m.yml"), "--max-error-rate", "1")
    assert r.returncode == 0, r.stderr
    reasons = {e["_id"]: e["reason"] for e in _errors(tmp_path)}
    assert reasons == {str(first): "missing_required", str(third): "duplicate_key"}
    assert _one(pg_db, "SELECT name FROM people") == ("kept",)
    assert _validate(tmp_path, tmp_path / "dump", pg_db, "--mapping", str(tmp_path / "m.yml")).returncode == 0
