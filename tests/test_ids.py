import subprocess
import sys
import uuid

import bson
import psycopg2
import pytest
from bson import ObjectId
from hypothesis import given, settings
from hypothesis import strategies as st

from mongo2pg.ids import IdFormatError, objectid_from_uuid, uuid_from_objectid, uuid_hex


def test_uuid_is_deterministic_reversible_and_rfc9562_v8():
    oid = ObjectId("65a1b2c3d4e5f60718293a4b")
    u = uuid_from_objectid(oid)
    assert u == "65a1b2c3-d4e5-8000-8000-f60718293a4b"
    assert uuid.UUID(u).version == 8 and uuid.UUID(u).variant == uuid.RFC_4122
    assert uuid_from_objectid(str(oid)) == u == uuid_from_objectid(oid.binary)
    assert objectid_from_uuid(u) == oid
    assert uuid_hex(oid) == u.replace("-", "") and objectid_from_uuid(uuid_hex(oid)) == oid  # COPY's form


def test_uuid_order_equals_objectid_order():
    oids = sorted(ObjectId() for _ in range(200))
    assert sorted(uuid.UUID(uuid_from_objectid(o)).bytes for o in oids) == [uuid.UUID(uuid_from_objectid(o)).bytes
                                                                         for o in oids]


def test_foreign_uuid_is_refused_not_misread():
    with pytest.raises(IdFormatError):
        objectid_from_uuid(str(uuid.uuid4()).replace("-4", "-a", 1))
    with pytest.raises(IdFormatError):
        uuid_from_objectid("not-an-id")


def test_cli_converts_both_ways():
    out = subprocess.run([sys.executable, "-m", "mongo2pg.cli", "id", "65a1b2c3d4e5f60718293a4b"],
                         capture_output=True, text=True, check=True).stdout
    assert "65a1b2c3-d4e5-8000-8000-f60718293a4b" in out
    back = subprocess.run([sys.executable, "-m", "mongo2pg.cli", "id", "65a1b2c3-d4e5-8000-8000-f60718293a4b"],
                          capture_output=True, text=True, check=True).stdout
    assert "65a1b2c3d4e5f60718293a4b" in back
    bad = subprocess.run([sys.executable, "-m", "mongo2pg.cli", "id", "xyz"], capture_output=True, text=True)
    assert bad.returncode == 2 and "error" in bad.stderr


# The rule's copies outside ids (the C builders, validation's SQL) against ids, on any ObjectId.
_ONE_TABLE = """
version: 1
name: ids_copies
tables:
  thing:
    collection: thing
    columns:
      - {name: id, source: _id, type: uuid, primary_key: true}
      - {name: ref, type: uuid}
"""


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=12, max_size=12), st.binary(min_size=12, max_size=12))
def test_the_c_builders_derive_ids_by_the_rule_in_ids(own, ref):
    from mongo2pg.mapping import parse_mapping
    from mongo2pg.transform import TableTransform
    from mongo2pg.validation import expect

    table = parse_mapping(_ONE_TABLE).tables["thing"]
    raw = bson.encode({"_id": ObjectId(own), "ref": ObjectId(ref)})
    row = TableTransform(parse_mapping(_ONE_TABLE), table)._raw_plan(parse_mapping(_ONE_TABLE)).row(raw)
    assert row is not None, "the C row builder left a plain document to Python"
    assert row[1] == uuid_hex(ObjectId(own))
    assert row[0] == f"{uuid_hex(ObjectId(own))}\t{uuid_hex(ObjectId(ref))}\n"
    digest = expect.compile_raw_digest(table, []).row(raw)
    assert digest[0] == uuid_hex(ObjectId(own))
    assert digest[1] == (uuid_hex(ObjectId(own)) + expect.ROW_SEP + uuid_hex(ObjectId(ref))).encode()


def test_validations_sql_reads_the_rule_backwards_as_ids_does(pg):
    from psycopg2 import sql

    from mongo2pg.validation.database import _OID_PAIR

    oids = [ObjectId() for _ in range(50)] + [ObjectId(b"\x00" * 12), ObjectId(b"\xff" * 12)]
    pairs = [(uuid_from_objectid(a), uuid_from_objectid(b)) for a, b in zip(oids, reversed(oids), strict=True)]
    foreign = (str(uuid.uuid4()), uuid_from_objectid(oids[0]))
    conn = psycopg2.connect(pg.create_db("t_ids_sql"))
    with conn.cursor() as cur:
        cur.execute("CREATE TEMP TABLE j (l uuid, r uuid)")
        cur.executemany("INSERT INTO j VALUES (%s, %s)", [*pairs, foreign])
        cur.execute(sql.SQL("SELECT l::text, r::text, {} FROM j").format(
            sql.SQL(_OID_PAIR).format(l=sql.Identifier("l"), r=sql.Identifier("r"))))
        got = {(left, right): v for left, right, v in cur.fetchall()}
    conn.close()
    for left, right in pairs:
        assert got[(left, right)] == str(objectid_from_uuid(left)) + str(objectid_from_uuid(right))
    assert got[foreign] == f"{foreign[0]} {foreign[1]}"  # not made by the rule: kept as text, never misread
