"""The C row builder (mongo2pg/transform/_fastrow.c, raw BSON -> COPY line) against the Python path it must follow.

For every document of the hostile corpus, of clean and dirty sample data, of generated documents with
awkward values (invalid UTF-8, dates outside years 1-9999, duplicate keys, out-of-range numbers, links
repeated or not ObjectIds) and of corrupted bytes, convert_raw_batch gives what convert_batch gives on
the decoded document: the same lines, ids, links, issues, unknown fields and duplicate-link counts; a
document it cannot decode fails the same way. And the builder settles the common documents itself.
"""

from __future__ import annotations

import os
import struct
from datetime import datetime

import bson
import pytest
from bson import Binary, Int64, ObjectId
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_corpus import MAPPING as CORPUS_MAPPING
from test_corpus import _corpus_docs
from test_transform import AWKWARD

from mongo2pg.mapping import load_mapping, parse_mapping
from mongo2pg.source import dumpfmt
from mongo2pg.source.readers import DumpSource
from mongo2pg.transform import TableTransform

MAPPING = """
version: 1
name: fastrow
enums:
  Colour: [RED, "GREEN\\\\x", "é"]
tables:
  other:
    collection: other
    columns:
      - {name: id, source: _id, type: uuid, primary_key: true}
  thing:
    collection: thing
    drop: [legacy]
    columns:
      - {name: id, source: _id, type: uuid, primary_key: true}
      - {name: t, type: text}
      - {name: req, type: text, required: true}
      - {name: filled, type: text, required: true, fill: "n/a\\tx"}
      - {name: created, type: timestamp, required: true, fill: objectid_time}
      - {name: ts, type: timestamp}
      - {name: i, type: integer}
      - {name: b, type: bigint}
      - {name: d, type: double}
      - {name: flag, type: boolean}
      - {name: flag_fill, type: boolean, required: true, fill: false}
      - {name: bin, type: bytea}
      - {name: colour, type: enum, enum: Colour}
      - {name: j, type: jsonb}
      - {name: tags, type: "text[]"}
      - {name: ref, type: uuid, references: other}
      - {name: same_id, source: _id, type: text}
junctions:
  thing_other:
    left: {column: thing_id, references: thing}
    right: {column: other_id, references: other}
    sources:
      - {collection: thing, field: otherIds, holds: right}
  other_thing:
    left: {column: other_id, references: other}
    right: {column: thing_id, references: thing}
    sources:
      - {collection: thing, field: backIds, holds: left}
"""
FIELDS = ["t", "req", "filled", "created", "ts", "i", "b", "d", "flag", "flag_fill", "bin", "colour", "j", "tags",
          "ref", "otherIds", "backIds", "legacy", "extra"]


def _outcome(transform: TableTransform, raws: list[bytes], raw_path: bool):
    """Everything a batch gives the load, the documents decoded (the raw path keeps bytes for them)."""
    try:
        if raw_path:
            out = transform.convert_raw_batch(raws)
        else:
            out = transform.convert_batch([bson.decode(r, dumpfmt.CODEC) for r in raws])
    except Exception as exc:  # noqa: BLE001 - a document neither path can read fails both the same way
        return ("error", type(exc).__name__)
    # repr: NaN equals itself there
    docs = [repr(bson.decode(d, dumpfmt.CODEC) if isinstance(d, bytes) else d) for d in out.docs]
    return (out.lines, docs, out.uuids, out.stage, out.issues, out.rejected, out.fixups, out.last_id,
            dict(transform.unknown_fields), transform.duplicate_links)


def _assert_same(mapping, table: str, raws: list[bytes]) -> None:
    fast = _outcome(TableTransform(mapping, mapping.tables[table]), raws, raw_path=True)
    slow = _outcome(TableTransform(mapping, mapping.tables[table]), raws, raw_path=False)
    assert fast == slow


def _settled(mapping, table: str, raws: list[bytes]) -> int:
    """How many of the documents the C builder settles itself."""
    row = TableTransform(mapping, mapping.tables[table])._raw_row
    return sum(row(r) is not None for r in raws)


# ---- raw BSON, for what bson.encode will not write: duplicate keys, invalid UTF-8, any date ----

def _elem(kind: int, name: bytes, payload: bytes) -> bytes:
    return bytes([kind]) + name + b"\x00" + payload


def _string(kind: int, name: bytes, data: bytes) -> bytes:
    return _elem(kind, name, struct.pack("<i", len(data) + 1) + data + b"\x00")


def _doc(elements: list[bytes]) -> bytes:
    body = b"".join(elements)
    return struct.pack("<i", len(body) + 5) + body + b"\x00"


def _encoded(name: str, value) -> bytes:
    """One element as bson.encode writes it."""
    return bson.encode({name: value})[4:-1]


def _encodable(value) -> bool:
    try:
        bson.encode({"v": value})
    except (UnicodeEncodeError, OverflowError, bson.errors.InvalidDocument):
        return False  # 'bad\udcff': a lone surrogate, which only invalid UTF-8 bytes make (TEXT_BYTES does); 2**63
    return True


AWKWARD_VALUES = [v for vs in AWKWARD.values() for v in vs if _encodable(v)]
OIDS = [ObjectId("650000000000000000000001"), ObjectId("650000000000000000000002"), ObjectId("000000000000000000000000"),
        ObjectId("ffffffffffffffffffffffff")]
TEXT_BYTES = st.one_of(st.text().map(str.encode), st.binary(max_size=12),
                       st.sampled_from([b"\xed\xa0\x80", b"\xc0\x80", b"\xf4\x90\x80\x80", b"\xe0\x80\x80", b"a\x00b",
                                        b"\xf0\x9f\x9a\x80", b"\\N", b"RED", b"GREEN\\x", "é".encode()]))
JSONISH = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(), st.text()),
                       lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text().filter(lambda k: "\x00" not in k), inner, max_size=4),
                       max_leaves=12)
VALUES = st.one_of(
    JSONISH, st.lists(st.one_of(st.none(), st.text(), st.integers(-(2**63), 2**63 - 1)), max_size=4),
    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(), st.sampled_from(OIDS),
    st.sampled_from(AWKWARD_VALUES), st.binary(max_size=8).map(Binary),
    st.binary(max_size=8).map(lambda b: Binary(b, 4)), st.datetimes(),
    st.lists(st.sampled_from(OIDS + ["x", 1]), max_size=6),
)


@st.composite
def elements(draw, name: bytes):
    how = draw(st.integers(0, 4))
    if how == 0:
        return _string(0x02, name, draw(TEXT_BYTES))
    if how == 1:  # a date anywhere in int64 milliseconds, the edges of years 1 and 9999 included
        ms = draw(st.one_of(st.integers(-(2**63), 2**63 - 1),
                            st.integers(-62135596800000 - 2, -62135596800000 + 2),
                            st.integers(253402300799999 - 2, 253402300799999 + 2), st.integers(-10**6, 10**6)))
        return _elem(0x09, name, struct.pack("<q", ms))
    if how == 2:
        return _elem(0x08, name, bytes([draw(st.sampled_from([0, 1, 2]))]))
    if how == 3:
        return _elem(0x10, name, struct.pack("<i", draw(st.integers(-(2**31), 2**31 - 1))))
    return _encoded(name.decode(), draw(VALUES))


@st.composite
def documents(draw) -> bytes:
    _id = draw(st.one_of(st.sampled_from(OIDS), st.builds(ObjectId), st.just("text-id")))
    els = [_encoded("_id", _id)]
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=12)):  # repeats: duplicate keys, the last wins
        els.append(draw(elements(name.encode())))
    if draw(st.booleans()):
        els = els[1:] + els[:1]
    return _doc(els)


# make test: seeded examples, the same every run; make fuzz: ten times as many random ones, under ASan.
FUZZ = os.environ.get("M2P_HYPOTHESIS_PROFILE") == "fuzz"


@settings(max_examples=6000 if FUZZ else 600, derandomize=not FUZZ, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(documents(), min_size=1, max_size=5))
def test_raw_path_equals_python_path_on_generated_documents(raws):
    _assert_same(parse_mapping(MAPPING), "thing", raws)


@settings(max_examples=4000 if FUZZ else 400, derandomize=not FUZZ, deadline=None)
@given(documents(), st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=4))
def test_corrupted_bytes_fail_or_convert_the_same_on_both_paths(raw, edits):
    data = bytearray(raw)
    for at, byte in edits:
        data[at % len(data)] = byte
    _assert_same(parse_mapping(MAPPING), "thing", [bytes(data)])


def test_raw_path_equals_python_path_on_the_corpus_and_awkward_values():
    mapping = parse_mapping(CORPUS_MAPPING)
    raws = list(_corpus_docs())
    base = {"_id": ObjectId("670000000000000000000000"), "case": "grid"}
    for field_name, values in AWKWARD.items():
        for k, v in enumerate(filter(_encodable, values)):
            raws.append(bson.encode({**base, "_id": ObjectId(f"67{len(raws):06x}{k:016x}"), field_name: v}))
    for raw in raws:
        _assert_same(mapping, "corpus", [raw])
    _assert_same(mapping, "corpus", raws)


def test_the_builder_settles_common_documents_itself():
    mapping = parse_mapping(MAPPING)
    plain = {"_id": OIDS[0], "t": "tab\tand back\\slash é", "req": "x", "ts": datetime(1969, 12, 31, 23, 59, 59, 1000),
             "i": -(2**31), "b": Int64(2**62), "d": 0.1, "flag": True, "bin": Binary(b"\x00\xff"), "colour": "é",
             "ref": OIDS[1], "otherIds": [OIDS[1], OIDS[1], OIDS[2]], "backIds": [], "legacy": {"x": 1}, "extra": 1}
    raw = bson.encode(plain)
    assert _settled(mapping, "thing", [raw]) == 1
    transform = TableTransform(mapping, mapping.tables["thing"])
    out = transform.convert_raw_batch([raw])
    assert out.docs == [raw] and transform.duplicate_links == 1 and transform.unknown_fields == {"extra": 1}
    line = out.lines[0].rstrip("\n").split("\t")
    created = OIDS[0].generation_time.strftime("%Y-%m-%d %H:%M:%S.000")  # the ObjectId's time, for the missing one
    assert line[1:6] == ["tab\\tand back\\\\slash é", "x", "n/a\\tx", created, "1969-12-31 23:59:59.001"]
    _assert_same(mapping, "thing", [raw])


@pytest.mark.parametrize("dump", ["clean_dump", "dirty_dump"])
def test_raw_path_equals_python_path_on_sample_data(dump, request):
    mapping = load_mapping("nextcrm")
    source = DumpSource(str(request.getfixturevalue(dump)))
    checked = settled = 0
    for table in mapping.tables.values():
        coll = source._colls.get(table.collection)
        if coll is None:
            continue
        raws = list(dumpfmt.iter_raw(coll))
        for i in range(0, len(raws), 500):
            _assert_same(mapping, table.name, raws[i:i + 500])
        checked += len(raws)
        settled += _settled(mapping, table.name, raws)
    assert checked > 10_000
    if dump == "clean_dump":  # jsonb values and the odd rare case are the Python path's
        assert settled > 0.9 * checked, (settled, checked)


def test_a_plan_refuses_to_work_uninitialised_or_twice():
    from mongo2pg.transform._fastrow import Plan

    with pytest.raises(RuntimeError):
        Plan.__new__(Plan).row(bson.encode({"_id": OIDS[0]}))
    plan = TableTransform(parse_mapping(MAPPING), parse_mapping(MAPPING).tables["other"])._raw_row.__self__
    with pytest.raises(RuntimeError):
        plan.__init__((b"_id",), 0, (), ())
    assert plan.row(bson.encode({"_id": OIDS[0]}))[1] == "650000000000" + "80008000" + "000000000001"


def test_a_row_postgresql_refuses_takes_its_staged_links_with_it(pg_db):
    """A line the C builder made that PostgreSQL still refuses (here a CHECK constraint an operator added)
    is rejected by name, and the links staged from it are dropped (they would dangle); the others load."""
    import time

    import psycopg2

    from mongo2pg import schema
    from mongo2pg.migration.copy import commit_batch
    from mongo2pg.migration.state import Checkpoint, create_state

    mapping = parse_mapping(MAPPING)
    conn = psycopg2.connect(pg_db)
    schema.apply(conn, mapping)
    create_state(conn, mapping)
    with conn.cursor() as cur:
        cur.execute("ALTER TABLE thing ADD CONSTRAINT no_refuse CHECK (t <> 'refuse me')")
    conn.commit()
    docs = [{"_id": OIDS[i], "req": "x", "t": t, "otherIds": [OIDS[3]], "backIds": [OIDS[2]]}
            for i, t in ((0, "fine"), (1, "refuse me"))]
    transform = TableTransform(mapping, mapping.tables["thing"])
    result = transform.convert_raw_batch([bson.encode(d) for d in docs])
    assert len(result.stage) == 4 and not result.issues  # both documents settled, two links each
    issues = commit_batch(conn, "thing", transform.columns, result, Checkpoint("load:thing"), 2, result.last_id,
                          time.monotonic())
    assert [(i.reason, i.source_id) for i in issues] == [("pg_rejected", str(OIDS[1]))]
    assert "no_refuse" in issues[0].message
    with conn.cursor() as cur:
        cur.execute("SELECT left_id::text, right_id::text FROM mongo2pg.link_stage ORDER BY 1, 2")
        staged = cur.fetchall()
        cur.execute("SELECT t FROM thing")
        assert cur.fetchall() == [("fine",)]
    own = "65000000-0000-8000-8000-000000000001"
    assert sorted(staged) == sorted([(own, "ffffffff-ffff-8000-8000-ffffffffffff"),
                                     ("00000000-0000-8000-8000-000000000000", own)])
    conn.close()


@pytest.mark.parametrize("encoding", ["UTF8", "LATIN1"])
def test_staged_links_arrive_whole_in_any_database_encoding(pg, encoding):
    """The link stage goes as binary COPY tuples (UTF-8 names); a LATIN1 database takes them as text lines
    in its own encoding: the same rows either way, a non-ASCII name, a tab and a backslash included."""
    import psycopg2

    from mongo2pg.migration.copy import _copy_stage
    from mongo2pg.migration.state import create_state
    from mongo2pg.transform import linkstage

    name = f"t_stage_{encoding.lower()}"
    admin = psycopg2.connect(pg.uri())
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {name}")
        cur.execute(f"CREATE DATABASE {name} ENCODING '{encoding}' TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'")
    admin.close()
    mapping = parse_mapping(MAPPING)
    conn = psycopg2.connect(pg.uri(name))
    assert conn.encoding == encoding
    create_state(conn, mapping)
    head, tail = linkstage.row_parts("thing_other", "café\tb\\x", "otherIds")
    left, right = bytes(range(16)), bytes(range(16, 32))
    with conn.cursor() as cur:
        _copy_stage(cur, [linkstage.row(head, left, right, tail)])
        cur.execute("SELECT junction, left_id::text, right_id::text, source_collection, source_field "
                    "FROM mongo2pg.link_stage")
        assert cur.fetchall() == [("thing_other", "00010203-0405-0607-0809-0a0b0c0d0e0f",
                                   "10111213-1415-1617-1819-1a1b1c1d1e1f", "café\tb\\x", "otherIds")]
    conn.close()
