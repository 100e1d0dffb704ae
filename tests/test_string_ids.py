"""An app whose MongoDB ids are strings (Prisma's `String @id @default(cuid())` / `uuid()`), end to end on real
servers: from-prisma, migrate from a live nx-27017, validate, `schema prisma` through Prisma's own check and a
real Prisma 7 Client making the app's calls, then reverse sync (the rollback path) back to MongoDB."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime

import psycopg2
import pytest
from bson import ObjectId
from prisma_readback import ROOT, generate_client, prisma_env

from mongo2pg.connect import mongo_client
from mongo2pg.mapping import load_mapping
from mongo2pg.source.readers import ResumePoint, open_source

SCHEMAS = ROOT / "tests" / "prisma"
DB = "notes"


def _cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "mongo2pg", *args], capture_output=True, text=True)
    assert not check or r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


def _documents() -> dict[str, list[dict]]:
    """Authors with cuid-like ids, one whose string id looks like an ObjectId's hex (it stays a string), one
    with an ObjectId _id (a reject: the table keeps string ids) and one repeating an email (a reject); notes
    with uuid ids, replies, one reply to a note that does not exist (its parentId set NULL) and one note whose
    author does not exist (a reject); labels and the explicit m:n model's rows."""
    t = datetime(2024, 3, 1, tzinfo=UTC)
    authors = [{"_id": f"clx{n:021d}", "email": f"a{n}@example.org", "name": f"A{n}", "createdAt": t, "updatedAt": t}
               for n in range(6)]
    authors.append({"_id": "65a1b2c3d4e5f60718293a4b", "email": "hexlike@example.org", "createdAt": t, "updatedAt": t})
    authors.append({"_id": ObjectId("65a1b2c3d4e5f60718293a4c"), "email": "oid@example.org", "createdAt": t,
                    "updatedAt": t})
    authors.append({"_id": "clz-duplicate", "email": "a1@example.org", "createdAt": t, "updatedAt": t})
    notes = [{"_id": f"4f0c1e9a-0000-4000-8000-{n:012d}", "title": f"note {n}", "authorId": authors[n % 7]["_id"]}
             for n in range(20)]
    for n in range(10, 20):
        notes[n]["parentId"] = notes[n - 10]["_id"]
    notes[19]["parentId"] = "4f0c1e9a-0000-4000-8000-999999999999"
    notes.append({"_id": "4f0c1e9a-0000-4000-8000-000000000777", "title": "orphan", "authorId": "clx-nobody"})
    labels = [{"_id": f"cll{n:021d}", "name": name} for n, name in enumerate(["work", "home", "later"])]
    links = [{"_id": f"cln{n:021d}", "noteId": notes[n]["_id"], "labelId": labels[n % 3]["_id"]} for n in range(12)]
    return {"Author": authors, "Note": notes, "Label": labels, "NoteLabel": links}


@pytest.fixture()
def notes_source(mongo):
    client = mongo_client(mongo.uri)
    client.drop_database(DB)
    docs = _documents()
    for name, items in docs.items():
        client[DB][name].insert_many(items)
    yield client, docs
    client.close()


def test_a_collection_of_string_ids_resumes_by_position_without_skipping_other_id_types(notes_source, mongo):
    """`$gt` on a string would skip the _ids sorting after strings (ObjectIds, on MongoDB): a resumed read
    of a string-id collection is the rest of the whole read, whatever the _ids' types."""
    source = open_source(mongo.uri, None, DB)
    whole = [raw for batch in source.batches("Author", ResumePoint(text_id=True), 4) for raw in batch]
    rest = [raw for batch in source.batches("Author", ResumePoint(3, str(whole[2]), text_id=True), 4) for raw in batch]
    assert len(whole) == 9 and [bytes(r) for r in rest] == [bytes(r) for r in whole[3:]]


def test_string_ids_migrate_validate_serve_prismas_client_and_go_back_to_mongodb(tmp_path, pg, mongo, notes_source):
    client, docs = notes_source
    mapping = tmp_path / "notes.yml"
    _cli("mapping", "from-prisma", str(SCHEMAS / "notes-mongodb.prisma"), "--out", str(mapping))
    m = load_mapping(str(mapping))
    assert {t.name: (t.pk.type, t.column("id").source) for t in m.tables.values()} == {
        name: ("text", "_id") for name in ("Author", "Note", "Label", "NoteLabel")}
    pg_uri = pg.create_db("t_string_ids")
    common = ["--mongo-uri", mongo.uri, "--db", DB, "--pg-uri", pg_uri, "--mapping", str(mapping),
              "--error-log", str(tmp_path / "errors.log")]
    _cli("migrate", *common, "--quiet", "--batch-size", "4", "--max-error-rate", "0.5",
         "--checkpoint-file", str(tmp_path / "cp.json"), "--summary-file", str(tmp_path / "summary.json"))
    logged = [json.loads(line) for line in (tmp_path / "errors.log").read_text().splitlines()]
    assert sorted((r["severity"], r["table"], r["_id"], r["reason"]) for r in logged) == [
        ("fixup", "Note", docs["Note"][19]["_id"], "dangling_reference"),
        ("reject", "Author", "65a1b2c3d4e5f60718293a4c", "bad_id"),
        ("reject", "Author", "clz-duplicate", "duplicate_key"),
        ("reject", "Note", "4f0c1e9a-0000-4000-8000-000000000777", "dangling_reference")]
    conn = psycopg2.connect(pg_uri)
    with conn.cursor() as cur:
        cur.execute('SELECT id FROM "Author" ORDER BY id')
        authors = [r[0] for r in cur.fetchall()]
        cur.execute('SELECT count(*) FROM "Note" n JOIN "Author" a ON a.id = n."authorId" '
                    'JOIN "Note" p ON p.id = n."parentId"')
        replies = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM pg_constraint WHERE contype = 'f'")
        fks = cur.fetchone()[0]
    conn.close()
    # the ids as they were, the hex-looking string among them (not made a UUID)
    assert authors == sorted([a["_id"] for a in docs["Author"][:7]])
    assert (replies, fks) == (9, 4)
    v = _cli("validate", *common, "--report", str(tmp_path / "report.json"), check=False)
    report = json.loads((tmp_path / "report.json").read_text())
    assert v.returncode == 0 and report["overallStatus"] == "PASS", v.stdout[-3000:]

    # The PostgreSQL-era schema: Prisma's check passes and the client makes string ids as before.
    client_dir, _ = generate_client(tmp_path, str(mapping))
    schema_text = (tmp_path / "schema.prisma").read_text()
    assert schema_text.count("@id @default(uuid())") == 1 and schema_text.count("@id @default(cuid())") == 3
    assert "@db.Uuid" not in schema_text
    _cli("capture", "install", "--pg-uri", pg_uri, "--mapping", str(mapping))
    r = subprocess.run(["node", str(SCHEMAS / "notes_like_the_app.js"), str(client_dir), pg_uri],
                       capture_output=True, text=True, env=prisma_env())
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout)
    author = got["author"]
    assert author["id"].startswith("c") and len(author["id"]) >= 20 and author["updatedAt"]
    assert got["updated"]["updatedAt"] > author["updatedAt"]
    read = {n["title"]: n for n in got["read"]}
    assert sorted(read) == ["a reply", "first", "second"]
    assert read["a reply"]["parent"]["title"] == "first" and [x["title"] for x in read["first"]["replies"]] == [
        "a reply"]
    assert sorted(x["label"]["name"] for x in read["a reply"]["labels"]) == ["fresh", "work"]

    # Rollback's way back: the app's writes reach MongoDB under the ids the client made.
    out = _cli("reverse-sync", "--pg-uri", pg_uri, "--mongo-uri", mongo.uri, "--db", DB, "--mapping",
               str(mapping)).stdout
    assert "Traceback" not in out
    mdb = client[DB]
    back = mdb["Author"].find_one({"_id": author["id"]})
    assert back is not None and back["name"] == "Renamed" and back["email"] == "new@example.org"
    reply = mdb["Note"].find_one({"_id": got["reply"]["id"]})
    assert reply["authorId"] == author["id"] and reply["parentId"] == read["first"]["id"]
    assert mdb["NoteLabel"].count_documents({"noteId": got["reply"]["id"]}) == 2
    rv = _cli("reverse-validate", "--pg-uri", pg_uri, "--mongo-uri", mongo.uri, "--db", DB, "--mapping",
              str(mapping))
    assert "reverse validation PASS" in rv.stdout
