"""Property-based: documents we did not write, through the real dump -> restore -> migrate -> validate.

Hypothesis generates parents and children from the mapping's field types, with every BSON type in
places it fits and places it does not, and awkward values: tabs, newlines, backslashes, the texts
`\\N` and `NULL`, quotes, NUL, invalid UTF-8, 70,000-character strings, Unicode, dates at the limits,
ids repeated in an array, references to missing documents, duplicates of a unique key, missing
required fields. For every example:
- dump -> restore (into the wire server) -> dump gives byte-identical documents;
- the migration, from the dump and from the live server, reconciles every table (source = loaded +
  rejected), logs every reject with its reason, and validation passes on what was loaded.

`make test` runs a bounded, derandomized number of examples (profile `ci`); `make fuzz` runs many more
(profile `fuzz`, random). The wire server refuses Decimal128 and invalid UTF-8 and stores every binary
as subtype 0 (its known gaps): an example holding any of them skips the restore and live legs, never
the dump leg.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from datetime import datetime
from itertools import count
from pathlib import Path

import bson
import pytest
from bson import Binary, Code, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mongo2pg.migration import Options, run
from mongo2pg.ops import backup
from mongo2pg.source import dumpfmt
from mongo2pg.validation import ValidateOptions, validate

# No example database: a derandomized run is the same run every time, and nothing is written into the tree.
_QUIET = {"deadline": None, "database": None,
          "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]}
settings.register_profile("ci", max_examples=int(os.environ.get("M2P_EXAMPLES", "12")), derandomize=True, **_QUIET)
settings.register_profile("fuzz", max_examples=int(os.environ.get("M2P_EXAMPLES", "300")), **_QUIET)
PROFILE = os.environ.get("M2P_HYPOTHESIS_PROFILE", "ci")

MAPPING = """
version: 1
name: props
tables:
  people:
    collection: people
    columns:
      - {name: id, source: _id, type: uuid, primary_key: true}
      - {name: email, type: text}
      - {name: name, type: text, required: true, fill: ""}
    indexes:
      - {name: people_email_key, columns: [email], unique: true}
  notes:
    collection: notes
    columns:
      - {name: id, source: _id, type: uuid, primary_key: true}
      - {name: title, type: text, required: true}
      - {name: body, type: text}
      - {name: n, type: integer}
      - {name: big, type: bigint}
      - {name: x, type: double}
      - {name: ok, type: boolean}
      - {name: at, type: timestamp}
      - {name: meta, type: jsonb}
      - {name: tags, type: "text[]"}
      - {name: blob, type: bytea}
      - {name: author, type: uuid, references: people, on_dangling: "null"}
      - {name: owner, type: uuid, references: people, on_dangling: reject}
junctions:
  notes_readers:
    left: {column: note_id, references: notes}
    right: {column: person_id, references: people}
    sources:
      - {collection: notes, field: readerIds, holds: right}
      - {collection: people, field: noteIds, holds: left}
"""

BAD_UTF8 = "\ue000BADUTF8\ue000"  # replaced in the encoded bytes by invalid UTF-8 of the same length
_BAD_BYTES = BAD_UTF8.encode()
_INVALID = b"\xff\xfe" + b"\xc3" * (len(_BAD_BYTES) - 2)

def _strategies(exotic: bool):
    """(any value, awkward text, date, json) strategies. With `exotic`, also what the wire server cannot
    store (Decimal128, Regex, MinKey/MaxKey, Timestamp, Code, NaN and infinities, small Int64, invalid
    UTF-8): such examples test the dump leg only."""
    specials = ["\\N", "NULL", "\t", "\n", "\r\n", "\\", "\\\\N", "'", '"', "a\x00b", "", " ", "🚀 Ünïcödé",
                "x" * 70_000, "\\u0000", "a\tb\nc\\d"] + ([BAD_UTF8] if exotic else [])
    text = st.one_of(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=30), st.sampled_from(specials))
    dates = st.one_of(
        st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)),
        st.sampled_from([datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59, 999000), datetime(1970, 1, 1),
                         datetime(1969, 12, 31, 23, 59, 59, 999000)]),
    ).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))
    int64 = st.integers(-2**63, 2**63 - 1) if exotic else st.integers(2**31, 2**63 - 1)
    odd = [Binary(b"\x00\x01"), ObjectId("650000000000000000000001")]
    if exotic:
        odd += [Decimal128("12.5"), Decimal128("NaN"), Regex("^a", "i"), Code("f()"), MinKey(), MaxKey(), Timestamp(1, 2)]
    scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**31, 2**31 - 1), int64.map(Int64),
                        st.floats(allow_nan=exotic, allow_infinity=exotic), text, dates, st.sampled_from(odd))
    keys = st.text(max_size=8).filter(lambda k: not k.startswith("$") and "\x00" not in k and "." not in k)
    json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                                st.dictionaries(keys, inner, max_size=4)),
                               max_leaves=12)
    return scalars, text, dates, json_values, int64, st.floats(allow_nan=exotic, allow_infinity=exotic)


def _field(strategy, typed):
    """A field's value: mostly of its type, sometimes any BSON value, sometimes absent (None)."""
    return st.one_of(st.none(), typed, typed, strategy)


@st.composite
def datasets(draw):
    scalars, text, dates, json_values, int64, floats = _strategies(exotic=draw(st.booleans()))
    ids = count(1)
    people_ids = [ObjectId(f"6a{next(ids):022x}") for _ in range(draw(st.integers(0, 5)))]
    ghost = ObjectId("6affffffffffffffffffffff")  # referenced, never present
    refs = st.sampled_from(people_ids + [ghost]) if people_ids else st.just(ghost)
    emails = st.sampled_from(["a@x.io", "b@x.io", "A@x.io", None])  # few values: duplicates are likely
    people = [{"_id": oid, "email": draw(emails), "name": draw(_field(scalars, text))} for oid in people_ids]
    notes = []
    for _ in range(draw(st.integers(0, 6))):
        oid = ObjectId(f"6b{next(ids):022x}")
        doc = {"_id": oid, "title": draw(_field(scalars, text)), "body": draw(_field(scalars, text)),
               "n": draw(_field(scalars, st.integers(-2**31, 2**31 - 1))),
               "big": draw(_field(scalars, int64.map(Int64))),
               "x": draw(_field(scalars, floats)), "ok": draw(_field(scalars, st.booleans())),
               "at": draw(_field(scalars, dates)), "meta": draw(_field(scalars, json_values)),
               "tags": draw(_field(scalars, st.lists(text, max_size=3))),
               "blob": draw(_field(scalars, st.one_of(st.binary(max_size=300),
                                                     st.binary(max_size=40).map(lambda b: Binary(b, 5))))),
               "author": draw(_field(scalars, refs)), "owner": draw(st.one_of(st.none(), refs)),
               "readerIds": draw(st.one_of(st.none(), st.lists(refs, max_size=4), scalars))}  # repeats likely
        notes.append({k: v for k, v in doc.items() if v is not None or draw(st.booleans())})
    for p in people:
        p["noteIds"] = draw(st.lists(st.sampled_from([n["_id"] for n in notes] or [ghost]), max_size=3))
    if draw(st.booleans()) and notes:  # a non-ObjectId _id
        notes.append({"_id": draw(st.sampled_from(["string-id", 42])), "title": "odd id"})
    return {"people": people, "notes": notes}


def _encode(doc: dict) -> bytes:
    return bson.encode(doc).replace(_BAD_BYTES, _INVALID)


_NOT_LIVE = (Decimal128, Regex, Code, MinKey, MaxKey, Timestamp)


def _live_capable(raw: list[bytes]) -> bool:
    """Whether the wire server stores these documents as they are (see _strategies for what it cannot)."""
    def walk(v) -> bool:
        if isinstance(v, _NOT_LIVE) or (isinstance(v, float) and not math.isfinite(v)):
            return False
        if isinstance(v, Int64) and -2**31 <= v < 2**31:
            return False
        if isinstance(v, Binary) and v.subtype != 0:  # it stores every binary as subtype 0
            return False
        if isinstance(v, dict):
            return all(walk(x) for x in v.values())
        if isinstance(v, list):
            return all(walk(x) for x in v)
        return True
    return all(_INVALID not in r and walk(bson.decode(r)) for r in raw)


def _migrate_and_validate(pg, name: str, work: Path, mapping: Path, source: dict) -> None:
    uri = pg.create_db(name)
    try:
        log = work / f"{name}.errors.log"
        summary = run(Options(pg_uri=uri, mapping=str(mapping), workers=1, error_log=str(log), max_error_rate=1.0,
                              checkpoint_file=str(work / f"{name}.cp.json"), **source)).to_json()
        assert summary["status"] == "complete", summary
        assert all(t["source"] == t["loaded"] + t["rejected"] for t in summary["tables"]), summary["tables"]
        logged = [json.loads(line) for line in log.read_text().splitlines()]
        rejects = [r for r in logged if r["severity"] == "reject"]
        assert len(rejects) == summary["totals"]["rejected"] and all(r["reason"] and r["message"] for r in logged)
        report = validate(ValidateOptions(pg_uri=uri, mapping=str(mapping), workers=1, error_log=str(log),
                                          report=str(work / f"{name}.report.json"), **source))
        assert report["overallStatus"] == "PASS", json.dumps({k: report[k] for k in (
            "failedLayers", "rowCountValidation", "sampleRecordValidation", "referentialIntegrityValidation",
            "dataTypeValidation")}, default=str)[:4000]
    finally:
        pg.drop_db(name)


_examples = count(1)


@pytest.mark.slow
@settings(settings.get_profile(PROFILE))
@given(data=datasets())
def test_any_documents_go_through_dump_restore_migrate_and_validate(pg, mongo, data):
    n = next(_examples)
    work = Path(tempfile.mkdtemp(prefix="m2p-prop-"))
    try:
        (work / "m.yml").write_text(MAPPING)
        raw = {name: [_encode(d) for d in docs] for name, docs in data.items()}
        writer = dumpfmt.DumpWriter(work / "dump", "nextcrm")
        for name, docs in raw.items():
            writer.write_collection(name, docs)
        _migrate_and_validate(pg, f"prop_dump_{n}", work, work / "m.yml", {"dump": str(work / "dump")})
        everything = [r for docs in raw.values() for r in docs]
        if not everything or not _live_capable(everything):
            return  # a database with no documents is no database to the server
        db = f"prop_{n}"
        backup.restore_database(work / "dump", mongo.uri, db="nextcrm", target_db=db, drop=True)
        backup.dump_database(mongo.uri, db, work / "again")
        again = {c.name: list(dumpfmt.iter_raw(c))
                 for c in dumpfmt.list_collections(dumpfmt.resolve_db_dir(work / "again", db)).values()}
        for name, docs in raw.items():
            if docs:  # the server stores no empty collection
                assert sorted(again[name]) == sorted(docs), name
        _migrate_and_validate(pg, f"prop_live_{n}", work, work / "m.yml", {"mongo_uri": mongo.uri, "db": db})
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_invalid_utf8_is_written_as_invalid_bytes_of_the_same_length():
    raw = _encode({"t": BAD_UTF8})
    assert _INVALID in raw and len(raw) == len(bson.encode({"t": BAD_UTF8}))
    assert not _live_capable([raw]) and _live_capable([bson.encode({"t": "fine", "n": Int64(2**40)})])


@settings(max_examples=40, **_QUIET)
@given(docs=st.lists(st.dictionaries(st.text(min_size=1, max_size=8).filter(lambda k: "\x00" not in k and k[0] != "$"),
                                     st.one_of(st.text(max_size=3000), st.integers(-2**31, 2**31 - 1), st.none()),
                                     max_size=6), max_size=60),
       gz=st.booleans())
def test_a_dump_file_is_counted_as_many_documents_as_it_reads(docs, gz, tmp_path_factory):
    """count_documents walks the length prefixes (in place, from a mapping of a plain file): the same
    number of documents the read decodes, for an empty file, a gzipped one, sizes of every kind."""
    out = tmp_path_factory.mktemp("count")
    dumpfmt.DumpWriter(out, "db", gzip_files=gz).write_collection("c", docs)
    coll = dumpfmt.list_collections(out / "db")["c"]
    assert dumpfmt.count_documents(coll) == sum(1 for _ in dumpfmt.iter_documents(coll)) == len(docs)
