"""Prisma applications: `mongo2pg mapping from-prisma` on a MongoDB-era schema.prisma, read by Prisma's own
parser, and `mongo2pg schema prisma`, whose PostgreSQL-era schema Prisma's CLI accepts and whose every table,
column, key and index is the migrated database's (read back through Prisma's parser)."""

from __future__ import annotations

import dataclasses
import json
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg2
import pytest
from bson import Int64, ObjectId
from hypothesis import given, settings
from hypothesis import strategies as st
from prisma_readback import PRISMA, ROOT, compare, generate_client, prisma_env, read_all

from mongo2pg import schema
from mongo2pg.ids import uuid_from_objectid
from mongo2pg.mapping import load_mapping
from mongo2pg.prisma.dmmf import read_dmmf
from mongo2pg.prisma.shapes import ACTIONS
from mongo2pg.reverse.rows import ObjectIds, to_bson
from mongo2pg.source import dumpfmt

SCHEMAS = ROOT / "tests" / "prisma"
NATIVE = {"Uuid": "UUID", "Timestamp": "TIMESTAMP(3)", "JsonB": "JSONB"}
SCALAR = {"String": "TEXT", "Int": "INTEGER", "BigInt": "BIGINT", "Float": "DOUBLE PRECISION", "Boolean": "BOOLEAN",
          "Json": "JSONB", "Bytes": "BYTEA"}


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mongo2pg.cli", *args], capture_output=True, text=True)


def _from_prisma(tmp_path: Path, schema_file: Path, *extra: str) -> Path:
    out = tmp_path / f"{schema_file.stem}.yml"
    r = _cli("mapping", "from-prisma", str(schema_file), "--out", str(out), *extra)
    assert r.returncode == 0, r.stderr
    return out


def prisma_validate(path: Path) -> subprocess.CompletedProcess:
    """The Prisma CLI's own check (offline: prisma_env)."""
    return subprocess.run([str(PRISMA), "validate", "--schema", str(path)], capture_output=True, text=True,
                          env=prisma_env())


def described(dmmf: dict) -> dict:
    """A PostgreSQL-era schema.prisma as the database it describes, in expected_schema's shape."""
    dm = dmmf["datamodel"]
    models = {m["name"]: m for m in dm["models"]}

    def table(name: str) -> str:
        return models[name].get("dbName") or name

    def column(f: dict) -> str:
        return f.get("dbName") or f["name"]

    tables, fks = {}, []
    for m in dm["models"]:
        cols, by_field = [], {f["name"]: f for f in m["fields"]}
        for f in m["fields"]:
            if f["kind"] == "object":
                if f.get("relationFromFields"):
                    src = by_field[f["relationFromFields"][0]]
                    target = models[f["type"]]
                    ref = next(g for g in target["fields"] if g["name"] == f["relationToFields"][0])
                    fks.append({"table": table(m["name"]), "name": f"{table(m['name'])}_{column(src)}_fkey",
                                "columns": [column(src)], "references": table(f["type"]), "ref_columns": [column(ref)],
                                "on_delete": ACTIONS[f["relationOnDelete"]], "on_update": ACTIONS[f["relationOnUpdate"]]})
                continue
            native = f.get("nativeType")
            base = f'"{f["type"]}"' if f["kind"] == "enum" else NATIVE[native[0]] if native else SCALAR[f["type"]]
            entry = {"name": column(f), "type": base + ("[]" if f["isList"] else ""),
                     "not_null": f["isRequired"] and not f["isList"]}
            d = f.get("default")
            if isinstance(d, dict) and d.get("name") == "now":
                entry["default"] = "CURRENT_TIMESTAMP"
            elif isinstance(d, bool):
                entry["default"] = "true" if d else "false"
            elif d is not None and not isinstance(d, dict):
                entry["default"] = str(d) if f["type"] in ("Int", "BigInt", "Float") else "'" + str(d) + "'"
            cols.append(entry)
        pk = [column(by_field[n]) for n in m["primaryKey"]["fields"]] if m.get("primaryKey") else \
            [column(f) for f in m["fields"] if f.get("isId")]
        tables[table(m["name"])] = {"columns": cols, "primary_key": pk}
    indexes = []
    for i in dm["indexes"]:
        if i["type"] in ("unique", "normal"):
            fields = {f["name"]: f for f in models[i["model"]]["fields"]}
            indexes.append({"table": table(i["model"]), "name": i["dbName"], "unique": i["type"] == "unique",
                            "columns": [column(fields[x["name"]]) for x in i["fields"]]})
    # An implicit m:n (two list fields, no scalar): the relation table Prisma itself lays out on PostgreSQL:
    # `_<relation>`, A for the model whose name sorts first (a self-relation: the field whose name does), B for
    # the other, primary key (A, B), an index on B, both foreign keys cascading.
    implicit: dict[str, list[tuple[str, str]]] = {}
    for m in dm["models"]:
        for f in m["fields"]:
            if f["kind"] == "object" and f["isList"] and not f.get("relationFromFields"):
                implicit.setdefault(f["relationName"], []).append((m["name"], f["name"]))
    for relation, sides in implicit.items():
        back = [f for m, n in sides for f in models[m]["fields"] if f["name"] == n]
        if len(sides) != 2 or any(not f["isList"] for f in back) or \
                any(f.get("relationFromFields") for m in models.values() for f in m["fields"]
                    if f["kind"] == "object" and f.get("relationName") == relation):
            continue  # a 1:n back-relation, or an explicit model's
        name = f"_{relation}"
        for col, (model, _) in zip(("A", "B"), sorted(sides), strict=True):
            idf = next(f for f in models[model]["fields"] if f.get("isId"))
            tables.setdefault(name, {"columns": [], "primary_key": ["A", "B"]})["columns"].append(
                {"name": col, "type": NATIVE[idf["nativeType"][0]] if idf.get("nativeType") else SCALAR[idf["type"]],
                 "not_null": True})
            fks.append({"table": name, "name": f"{name}_{col}_fkey", "columns": [col], "references": table(model),
                        "ref_columns": [column(idf)], "on_delete": "CASCADE", "on_update": "CASCADE"})
        indexes.append({"table": name, "name": f"{name}_B_index", "unique": False, "columns": ["B"]})
    enums = {e["name"]: [v["name"] for v in e["values"]] for e in dm["enums"]}
    return {"enums": enums, "tables": tables, "foreign_keys": fks, "indexes": indexes}


def test_nextcrm_from_its_mongodb_era_schema_gives_todays_mapping_but_two_reviewed_differences(tmp_path):
    """tests/prisma/nextcrm-mongodb.prisma is written from the reference facts; from-prisma with the
    nextcrm naming gives today's nextcrm.yml schema but for two differences NextCRM made on PostgreSQL
    that its MongoDB-era schema cannot say: a foreign key where MongoDB had a bare ObjectId
    (Sections.board), and a plain index beside the unique one on Users.email (Prisma allows one)."""
    generated = load_mapping(str(_from_prisma(tmp_path, SCHEMAS / "nextcrm-mongodb.prisma", "--naming", "nextcrm")))
    today = load_mapping("nextcrm")
    assert schema.diff_schemas(schema.expected_schema(today), schema.expected_schema(generated)) == [
        "foreign key Sections_board_fkey: missing", "index Users_email_idx: missing"]
    assert (len(today.foreign_keys()), len(generated.foreign_keys())) == (52, 51)
    assert (len(today.indexes()), len(generated.indexes())) == (121, 120)
    # The migration's own decisions agree too: sources, fills, dangling policies, junction sides.
    differing = [(t, c.name) for t in today.tables for c in today.tables[t].columns
                 if dataclasses.replace(c, prisma=()) != dataclasses.replace(generated.tables[t].column(c.name), prisma=())]
    assert differing == [("Sections", "board")]
    for name, j in today.junctions.items():
        g = generated.junctions[name]
        assert (g.left, g.right, set(g.sources)) == (j.left, j.right, set(j.sources)), name
    assert list(generated.tables) == list(today.tables)


@pytest.mark.parametrize("which", ["nextcrm", "nextcrm-from-prisma", "blog"])
def test_the_postgresql_era_schema_prisma_is_valid_and_describes_the_database_exactly(tmp_path, which):
    if which == "nextcrm":
        mapping_ref = "nextcrm"
    else:
        source = SCHEMAS / ("nextcrm-mongodb.prisma" if which != "blog" else "blog-mongodb.prisma")
        mapping_ref = str(_from_prisma(tmp_path, source, *(["--naming", "nextcrm"] if which != "blog" else [])))
    out = tmp_path / "schema.prisma"
    r = _cli("schema", "prisma", "--mapping", mapping_ref, "--out", str(out))
    assert r.returncode == 0, r.stderr
    v = prisma_validate(out)
    assert v.returncode == 0, v.stdout + v.stderr
    mapping = load_mapping(mapping_ref)
    assert schema.diff_schemas(schema.expected_schema(mapping), described(read_dmmf(out))) == []
    text = out.read_text()
    if which != "blog":  # NextCRM's own Prisma names are kept (nextcrm.yml carries them): its code reads the same fields
        assert 'v Int @map("__v")' in text and "assigned_to_user Users? @relation(" in text
        assert "invoices DocumentsToInvoices[]" in text and "watching_users AccountWatchers[]" in text


def test_a_schema_prisma_refuses_is_its_message_in_one_error_not_a_traceback(tmp_path):
    bad = tmp_path / "shop.prisma"
    bad.write_text('datasource db {\n  provider = "mongodb"\n}\n\nmodel Product {\n'
                   '  id    String  @id @default(auto()) @map("_id") @db.ObjectId\n  price Decimal\n}\n')
    r = _cli("mapping", "from-prisma", str(bad))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "Decimal" in r.stderr and "Prisma refused the schema" in r.stderr
    missing = _cli("mapping", "from-prisma", str(tmp_path / "nope.prisma"))
    assert missing.returncode == 2 and "no such schema.prisma" in missing.stderr


def _blog_documents(seed: int = 4) -> dict[str, list[dict]]:
    """Blog documents as Prisma on MongoDB writes them: links on both sides of each m:n, self-relations,
    composite types, an enum list, BigInt views, optional fields absent or null."""
    rng = random.Random(seed)
    start = datetime(2022, 1, 1, tzinfo=UTC)
    users = [{"_id": ObjectId(), "email": f"user{i}@example.org", "createdAt": start + timedelta(hours=i)}
             for i in range(120)]
    cats = [{"_id": ObjectId(), "name": f"category {i}", "postIDs": []} for i in range(15)]
    posts = []
    for u in users:
        u.update({"roles": rng.sample(["READER", "AUTHOR", "EDITOR"], rng.randint(0, 2)), "followingIDs": [],
                  "followerIDs": []})
        if rng.random() < 0.7:
            u["name"] = rng.choice(["Zoë Ñúñez", "O'Brien", "李雷", "Ada"])
        if rng.random() < 0.5:
            u["address"] = {"street": f"{rng.randint(1, 99)} Main St", "city": "Brno",
                            **({"zip": "60200"} if rng.random() < 0.5 else {})}
        if rng.random() < 0.3:
            u["invitedById"] = rng.choice(users)["_id"]
    for u in users:
        for other in rng.sample(users, 3):
            if other is not u and other["_id"] not in u["followingIDs"]:
                u["followingIDs"].append(other["_id"])
                other["followerIDs"].append(u["_id"])
    for c in cats[1:]:
        if rng.random() < 0.6:
            c["parentId"] = rng.choice(cats[:3])["_id"]
    for i in range(400):
        author = rng.choice(users)
        chosen = rng.sample(cats, rng.randint(0, 3))
        post = {"_id": ObjectId(), "slug": f"post-{i}", "title": f"Post {i}", "body": "text " * rng.randint(1, 200),
                "views": Int64(rng.randint(0, 2**40)), "published": rng.random() < 0.8,
                "tags": rng.sample(["db", "prisma", "mongodb", "postgres"], rng.randint(0, 3)),
                "revisions": [{"at": start + timedelta(days=k), **({"note": "typo"} if k % 2 else {})}
                              for k in range(rng.randint(0, 3))],
                "authorId": author["_id"], "categoryIDs": [c["_id"] for c in chosen]}
        if rng.random() < 0.5:
            post["rating"] = rng.random() * 5
        if rng.random() < 0.4:
            post["meta"] = {"seo": {"keywords": ["a", "b"]}, "score": rng.randint(1, 9)}
        for c in chosen:
            c["postIDs"].append(post["_id"])
        posts.append(post)
    return {"users": users, "posts": posts, "Category": cats}


def _shop_documents(seed: int = 5) -> dict[str, list[dict]]:
    """Shop documents: the orders hold the m:n links and the products none (their array absent, as drifted
    data has it), a customer removed from some orders, BigInt counters past 2**31, binary thumbnails
    (NUL, backslash and newline bytes among them)."""
    rng = random.Random(seed)
    customers = [{"_id": ObjectId(), "email": f"c{i}@shop.example", "loyalty": Int64(rng.randint(0, 2**40))}
                 for i in range(60)]
    products = [{"_id": ObjectId(), "vendor": rng.choice(["acme", "globex"]), "sku": f"SKU-{i}",
                 "price": round(rng.random() * 500, 2), "stock": rng.randint(0, 90), "active": rng.random() < 0.9,
                 "tags": rng.sample(["new", "sale", "eco"], rng.randint(0, 2)),
                 **({"thumbnail": bytes([0, 92, 10, 255]) + rng.randbytes(rng.randint(0, 3000))} if i % 3 else {})}
                for i in range(80)]
    orders = []
    for i in range(300):
        order = {"_id": ObjectId(), "number": Int64(10_000_000_000 + i), "state": rng.choice(["NEW", "PAID", "SHIPPED"]),
                 "total": {"amount": round(rng.random() * 900, 2), "currency": "EUR"},
                 "placedAt": datetime(2024, 5, 1, tzinfo=UTC) + timedelta(minutes=i),
                 "productIDs": [p["_id"] for p in rng.sample(products, rng.randint(0, 4))]}
        if rng.random() < 0.85:
            order["customerId"] = rng.choice(customers)["_id"]
        orders.append(order)
    return {"Customer": customers, "Product": products, "Order": orders}


@pytest.mark.parametrize("app", ["blog", "shop"])
def test_an_app_from_its_schema_prisma_migrates_validates_and_reads_back_through_prisma_client(tmp_path, pg_db, app):
    mapping = _from_prisma(tmp_path, SCHEMAS / f"{app}-mongodb.prisma")
    docs = _blog_documents() if app == "blog" else _shop_documents()
    writer = dumpfmt.DumpWriter(tmp_path / "dump", app)
    for name, items in docs.items():
        writer.write_collection(name, iter(items))
    common = ["--dump", str(tmp_path / "dump"), "--db", app, "--pg-uri", pg_db, "--mapping", str(mapping),
              "--error-log", str(tmp_path / "errors.log")]
    m = _cli("migrate", *common, "--quiet", "--checkpoint-file", str(tmp_path / "cp.json"),
             "--summary-file", str(tmp_path / "summary.json"))
    assert m.returncode == 0, m.stdout[-2000:] + m.stderr[-2000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["totals"]["rejected"] == 0 and summary["totals"]["loaded"] == sum(map(len, docs.values()))
    if app == "blog":
        links = {"_follows": sum(len(u["followingIDs"]) for u in docs["users"]),
                 "_CategoryToPost": sum(len(p["categoryIDs"]) for p in docs["posts"])}
    else:
        links = {"_OrderToProduct": sum(len(o["productIDs"]) for o in docs["Order"])}
    assert {j: summary["junctions"][j]["rows"] for j in links} == links
    v = _cli("validate", *common, "--report", str(tmp_path / "report.json"))
    report = json.loads((tmp_path / "report.json").read_text())
    assert v.returncode == 0 and report["overallStatus"] == "PASS", v.stdout[-3000:]
    # Read back through Prisma Client, generated from `schema prisma`: every model, every relation.
    client, dmmf = generate_client(tmp_path, str(mapping))
    per_model = compare(load_mapping(str(mapping)), dmmf, read_all(tmp_path, client, dmmf, pg_db, page=50), docs)
    counts = {"User": 120, "Post": 400, "Category": 15} if app == "blog" else {"Customer": 60, "Product": 80,
                                                                                  "Order": 300}
    assert per_model == {**counts, **links}
    if app == "blog":  # the app's m:n calls, unchanged: connect and create through the list fields, include
        r = subprocess.run(["node", str(SCHEMAS / "blog_like_the_app.js"), str(client), pg_db], capture_output=True,
                           text=True, env=prisma_env())
        assert r.returncode == 0, r.stderr[-3000:]
        got = json.loads(r.stdout)
        assert sorted(c["name"] for c in got["readPost"]["categories"]) == ["made-with-the-post", "news-from-the-app"]
        assert [u["email"] for u in got["readStar"]["followers"]] == ["fan@example.org"]
        assert [u["email"] for u in got["readFan"]["following"]] == ["star@example.org"]
        assert [p["slug"] for p in got["readNews"]["posts"]] == ["hello"]


def test_the_nextcrm_sample_reads_back_through_prisma_client_every_model_and_relation(tmp_path, pg_db, clean_dump):
    """NextCRM's sample migrated with the built-in mapping, read through a Prisma 7 client generated from
    `mongo2pg schema prisma` (driver adapter @prisma/adapter-pg), page by page with every relation
    included: the rows, values, relations and junction rows are the source documents'."""
    m = _cli("migrate", "--dump", str(clean_dump), "--pg-uri", pg_db, "--quiet", "--error-log",
             str(tmp_path / "errors.log"), "--checkpoint-file", str(tmp_path / "cp.json"))
    assert m.returncode == 0, m.stderr[-2000:]
    mapping = load_mapping("nextcrm")
    db_dir = dumpfmt.resolve_db_dir(str(clean_dump), "nextcrm")
    documents = {name: list(dumpfmt.iter_documents(c)) for name, c in dumpfmt.list_collections(db_dir).items()}
    client, dmmf = generate_client(tmp_path, "nextcrm")
    per_model = compare(mapping, dmmf, read_all(tmp_path, client, dmmf, pg_db), documents)
    assert sum(per_model[t] for t in mapping.tables) == sum(map(len, documents.values()))
    assert all(per_model[j] > 0 for j in mapping.junctions)


# ---- real MongoDB-era schemas: Prisma 6 settings, the Auth.js adapter's shapes, what the app's code relies on

def test_a_prisma_6_schema_is_read_as_written_and_prismas_messages_keep_its_line_numbers(tmp_path):
    """Every MongoDB-era schema has `url` in its datasource (Prisma 6 required it; Prisma 7 refuses it)."""
    mapping = load_mapping(str(_from_prisma(tmp_path, SCHEMAS / "auth-mongodb.prisma")))
    assert {"User", "Account", "Session", "VerificationToken"} <= set(mapping.tables)
    bad = tmp_path / "schema.prisma"
    bad.write_text('datasource db {\n  provider = "mongodb"\n  url      = env("DATABASE_URL")\n'
                   '  directUrl = env("DIRECT_URL")\n}\n\nmodel Product {\n'
                   '  id    String  @id @default(auto()) @map("_id") @db.ObjectId\n  url   String\n  price Decimal\n}\n')
    r = _cli("mapping", "from-prisma", str(bad))
    assert r.returncode == 2 and "Decimal" in r.stderr and "Traceback" not in r.stderr
    assert f"{bad}:10" in r.stderr  # the user's own line: price Decimal
    assert "url" not in r.stderr.split("Decimal", 1)[0]  # the url line is no complaint of Prisma's


@settings(deadline=None)
@given(st.lists(st.sampled_from(["url", "directUrl", "shadowDatabaseUrl", "provider", "relationMode", "extensions"]),
                min_size=1, max_size=6),
       st.sampled_from(["url", "directUrl", "name"]))
def test_as_prisma7_sets_aside_only_a_datasources_connection_settings(keys, field):
    from mongo2pg.prisma.prisma6 import as_prisma7

    source = ["// url = env(\"X\") in a comment stays", "datasource db {"]
    source += [f'  {k} = env("{k.upper()}")' for k in keys] + ["}", "", "model M {", f"  {field} String", "}"]
    out = as_prisma7("\n".join(source)).split("\n")
    assert len(out) == len(source)
    for before, after in zip(source, out, strict=True):
        key = before.strip().split(" ")[0]
        in_datasource = before.startswith("  ") and source.index(before) < source.index("}")
        if in_datasource and key in ("url", "directUrl", "shadowDatabaseUrl"):
            assert after.startswith("//") and before.strip() in after
        else:
            assert after == before  # a model's field named url, the provider, the comment: untouched


def _auth_documents() -> dict[str, list[dict]]:
    """As the Auth.js adapter wrote them on MongoDB: Account.userId and Session.userId are the user's id as
    24 hex digits (the schema says String), plus one account whose userId is no id at all."""
    oid = iter(ObjectId(bytes.fromhex(f"65a1b2c3{n:016x}")) for n in range(1000))  # the same ids every call
    users = [{"_id": next(oid), "email": f"u{i}@example.org", "image": "/me.png", "role": "admin" if i == 0 else "user",
              "interests": ["news"], "scores": [1], "roles": ["user"], "apiKey": f"key{i}", "devices": [],
              "createdAt": datetime(2024, 1, 1, tzinfo=UTC), "updatedAt": datetime(2024, 1, 2, tzinfo=UTC)}
             for i in range(5)]
    accounts = [{"_id": next(oid), "userId": str(u["_id"]), "type": "oauth", "provider": "github",
                 "providerAccountId": str(i)} for i, u in enumerate(users)]
    accounts.append({"_id": next(oid), "userId": "not-an-objectid", "type": "oauth", "provider": "gitlab",
                     "providerAccountId": "x"})
    sessions = [{"_id": next(oid), "sessionToken": f"t{i}", "userId": str(u["_id"]),
                 "expires": datetime(2025, 1, 1, tzinfo=UTC)} for i, u in enumerate(users)]
    return {"User": users, "Account": accounts, "Session": sessions, "VerificationToken": []}


def _migrate_auth(tmp_path, pg_db):
    mapping = _from_prisma(tmp_path, SCHEMAS / "auth-mongodb.prisma")
    writer = dumpfmt.DumpWriter(tmp_path / "dump", "auth")
    for name, items in _auth_documents().items():
        writer.write_collection(name, iter(items))
    common = ["--dump", str(tmp_path / "dump"), "--db", "auth", "--pg-uri", pg_db, "--mapping", str(mapping),
              "--error-log", str(tmp_path / "errors.log")]
    m = _cli("migrate", *common, "--quiet", "--checkpoint-file", str(tmp_path / "cp.json"), "--max-error-rate", "0.5",
             "--summary-file", str(tmp_path / "summary.json"))
    assert m.returncode == 0, m.stdout[-2000:] + m.stderr[-2000:]
    return mapping, common


def test_the_auth_adapters_string_relation_scalars_become_foreign_keys_to_the_migrated_ids(tmp_path, pg_db):
    """`userId String` relating to `User.id @db.ObjectId`: Prisma accepts it, and the documents hold hex ids."""
    mapping, common = _migrate_auth(tmp_path, pg_db)
    account = load_mapping(str(mapping)).tables["Account"].column("userId")
    assert (account.type, account.references) == ("uuid", "User")
    summary = json.loads((tmp_path / "summary.json").read_text())
    account_row = next(t for t in summary["tables"] if t["table"] == "Account")
    assert (account_row["loaded"], account_row["rejected"]) == (5, 1)
    rejects = [json.loads(line) for line in (tmp_path / "errors.log").read_text().splitlines()]
    assert [(r["table"], r["field"], r["reason"]) for r in rejects] == [("Account", "userId", "type_mismatch")]
    conn = psycopg2.connect(pg_db)
    with conn.cursor() as cur:
        cur.execute('SELECT count(*) FROM "Account" a JOIN "User" u ON u.id = a."userId"')
        joined = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM pg_constraint WHERE conname = 'Account_userId_fkey'")
        fk = cur.fetchone()[0]
    conn.close()
    assert (joined, fk) == (5, 1)
    v = _cli("validate", *common, "--report", str(tmp_path / "report.json"))
    assert v.returncode == 0, v.stdout[-3000:]


def test_a_string_relation_scalar_goes_back_to_mongodb_as_the_hex_string_the_app_reads(tmp_path):
    """Reverse sync (rollback) writes `userId String` as the 24 hex digits the MongoDB-era client reads, not
    as an ObjectId (Prisma's String field would refuse it); an `@db.ObjectId` reference stays an ObjectId."""
    m = load_mapping(str(_from_prisma(tmp_path, SCHEMAS / "auth-mongodb.prisma")))
    user = ObjectId("65a1b2c3d4e5f60718293a4b")
    as_hex, as_oid = m.tables["Account"].column("userId"), m.tables["User"].pk
    assert (as_hex.stored_as, as_oid.stored_as) == ("hex", None)
    ids = ObjectIds(None)  # a migrated id converts without a lookup
    assert to_bson(uuid_from_objectid(user), as_hex, ids) == "65a1b2c3d4e5f60718293a4b"
    assert to_bson(uuid_from_objectid(user), dataclasses.replace(as_hex, stored_as=None), ids) == user


def test_a_client_from_schema_prisma_takes_the_calls_the_mongodb_era_app_made(tmp_path, pg_db):
    """create without updatedAt (Prisma sets it), nor the defaults the client makes (cuid) or the schema
    gives (a string, an @map-ped enum value, scalar lists), a nested create, an update, an include: through a
    real Prisma 7 Client generated from `schema prisma` against the migrated database."""
    mapping, _ = _migrate_auth(tmp_path, pg_db)
    client, _ = generate_client(tmp_path, str(mapping))
    r = subprocess.run(["node", str(SCHEMAS / "create_like_the_app.js"), str(client), pg_db], capture_output=True,
                       text=True, env=prisma_env())
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout)
    created, updated, read = got["created"], got["updated"], got["read"]
    assert created["updatedAt"] and updated["updatedAt"] > created["updatedAt"]
    assert (created["image"], created["role"], created["interests"], created["scores"], created["roles"]) == (
        "/avatar.png", "USER", ["news"], [1, 2, 3], ["user", "admin"])
    assert created["apiKey"] and created["createdAt"]
    assert [a["provider"] for a in read["accounts"]] == ["github"] and read["name"] == "Renamed"


def test_a_relation_to_a_field_that_is_not_the_id_is_refused_by_model_and_field_with_a_fix(tmp_path):
    schema_file = tmp_path / "schema.prisma"
    schema_file.write_text('datasource db {\n  provider = "mongodb"\n  url = env("DATABASE_URL")\n}\n\n'
                           'model User {\n  id    String @id @default(auto()) @map("_id") @db.ObjectId\n'
                           '  email String @unique\n  posts Post[]\n}\n\n'
                           'model Post {\n  id         String @id @default(auto()) @map("_id") @db.ObjectId\n'
                           '  ownerEmail String\n  owner      User   @relation(fields: [ownerEmail], references: [email])\n}\n')
    r = _cli("mapping", "from-prisma", str(schema_file))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "Post.ownerEmail" in r.stderr and "User.email" in r.stderr and "Fix:" in r.stderr
    assert "<from-prisma>" not in r.stderr and ".yml" not in r.stderr


@settings(deadline=None)
@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=8),
                max_size=5))
def test_a_list_default_is_written_as_postgresql_prints_it_back(pg, values):
    """The schema check compares column defaults as the server prints them: a list default written in any
    other spelling would stop every migration of that mapping."""
    from mongo2pg.prisma.columns import array_literal

    literal = array_literal(values)
    conn = psycopg2.connect(pg.uri("postgres"))
    with conn.cursor() as cur:
        cur.execute("SELECT (%s::text[])::text, %s::text[]", (literal, literal))
        printed, parsed = cur.fetchone()
    conn.close()
    assert (printed, parsed) == (literal, values)


def test_app_check_finds_what_the_apps_drifted_schema_cannot_read_and_passes_the_one_that_matches(tmp_path, pg_db):
    """As NextCRM's app did after its migration (an enum value dropped that migrated rows hold), and two more
    drifts: a field made required where rows hold NULL, a column renamed in the schema only."""
    mapping, _ = _migrate_auth(tmp_path, pg_db)
    app = tmp_path / "app.prisma"
    assert _cli("schema", "prisma", "--mapping", str(mapping), "--out", str(app)).returncode == 0
    ok = _cli("app-check", "--schema", str(app), "--pg-uri", pg_db)
    assert ok.returncode == 0 and ok.stdout.startswith("app-check: every row fits"), ok.stdout + ok.stderr
    text = app.read_text()
    drifted = tmp_path / "drifted.prisma"
    drifted.write_text(text.replace('  ADMIN @map("admin")\n', "")
                       .replace("  name String?\n", "  name String\n")
                       .replace("  expires_at Int?\n", '  expires_at Int? @map("expires_at_utc")\n'))
    assert drifted.read_text() != text
    r = _cli("app-check", "--schema", str(drifted), "--pg-uri", pg_db)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stdout + r.stderr
    admin = str(uuid_from_objectid(_auth_documents()["User"][0]["_id"]))
    lines = r.stdout.splitlines()
    assert f"app-check: User.role: 1 rows: rows hold admin, which enum Role of the app lacks (e.g. {admin})" in lines
    assert any(line.startswith("app-check: User.name: 5 rows: NULL in a field the app requires (e.g. ") for line in lines)
    assert "app-check: Account.expires_at: column Account.expires_at_utc is missing" in lines
    assert lines[-1].startswith("app-check: 3 problem(s)")
