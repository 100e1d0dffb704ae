"""The compiled row (the fast path of every load) against the generic per-column loop it must follow.

For every document of the hostile corpus, of clean and dirty sample data, and of a grid of awkward
values per column type, the compiled row gives the same COPY line as the generic loop, or leaves the
document to it (which then converts or rejects it). No server needed: this is the transform alone.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import bson
import pytest
from bson import Code, Decimal128, Int64, ObjectId
from test_corpus import MAPPING, _corpus_docs

from mongo2pg.ids import uuid_hex
from mongo2pg.mapping import load_mapping, parse_mapping
from mongo2pg.source import dumpfmt
from mongo2pg.source.readers import DumpSource
from mongo2pg.transform.compiled import _Slow
from mongo2pg.transform.converters import Bad
from mongo2pg.transform.table import TableTransform, _FieldBad

AWKWARD = {
    "t": ["", "plain", "tab\there", "new\nline", "cr\r", "back\\slash", "\\N", "é ✓ 🚀", "\u2028", "\x7f", "a\x00b",
          "bad\udcff", 5, 2.5, True, Code("x = 1"), ObjectId("650000000000000000000001"), {"a": 1}, Decimal128("1.5")],
    "i": [0, -1, 2**31 - 1, 2**31, -(2**31), -(2**31) - 1, Int64(7), True, 1.0, 1.5, "12", " 12 ", "x", None],
    "b": [2**63 - 1, 2**63, Int64(-(2**63)), False],
    "d": [0.1, 1e300, float("nan"), float("inf"), 3, True, "1"],
    "ts": [datetime(2020, 1, 2, 3, 4, 5, 678000), datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59, 999000),
           datetime(2020, 1, 1, tzinfo=UTC), datetime(2020, 1, 1, tzinfo=timezone(timedelta(hours=2))),
           datetime(2020, 1, 1, tzinfo=bson.tz_util.utc), "2024-02-29T12:00:00Z", "nope", 17],
    "j": [{}, [], {"a": [1, 2.5, None, True]}, {"k": "back\\slash"}, {"k": "x\\u0000"}, {"k": "a\x00b"}, {"é": "✓"},
          {"o": ObjectId("650000000000000000000001")}, {"d": datetime(2020, 1, 1)}, float("nan")],
    "tags": [[], ["a", "b"], ["a", 2], ["q\"uote", "back\\"], [None], "notalist", [{"x": 1}]],
    "colour": ["RED", "GREEN", "BLUE", "", 1, None, ["RED"]],
    "parent": [ObjectId("650000000000000000000001"), "650000000000000000000001", "zz", 12, None],
    "case": ["c", None, 3],
}


def _outcome(transform: TableTransform, fn, doc: dict) -> tuple[str, str]:
    _id = doc["_id"]
    try:
        return "line", fn(doc, _id, uuid_hex(_id))
    except _FieldBad as fb:
        return "reject", f"{fb.field}:{fb.bad.reason}"
    except (Bad, _Slow):
        return "left to the generic loop", ""


def _assert_same(transform: TableTransform, docs) -> int:
    n = 0
    for doc in docs:
        if type(doc.get("_id")) is not ObjectId:
            continue
        fast = _outcome(transform, transform._row, doc)
        slow = _outcome(transform, transform.convert_slow, doc)
        if fast[0] == "line":
            assert fast == slow, (doc, fast, slow)
        else:
            assert slow[0] in ("line", "reject"), (doc, slow)
        n += 1
    return n


def test_compiled_row_equals_generic_loop_on_the_corpus_and_awkward_values():
    mapping = parse_mapping(MAPPING)
    transform = TableTransform(mapping, mapping.tables["corpus"])
    docs = [bson.decode(raw, dumpfmt.CODEC) for raw in _corpus_docs()]
    base = {"_id": ObjectId("670000000000000000000000"), "case": "grid"}
    for field_name, values in AWKWARD.items():
        for k, v in enumerate(values):
            docs.append({**base, "_id": ObjectId(f"67{len(docs):06x}{k:016x}"), field_name: v})
    assert _assert_same(transform, docs) == len(docs) - 1  # all but the string _id
    # the fast path settles the common cases itself
    plain = {"_id": ObjectId("680000000000000000000000"), "case": "c", "t": "x", "i": 1, "ts": datetime(2020, 1, 1),
             "colour": "RED", "parent": ObjectId("650000000000000000000001"), "j": {"a": 1}, "tags": ["a"]}
    assert _outcome(transform, transform._row, plain)[0] == "line"


@pytest.mark.parametrize("dump", ["clean_dump", "dirty_dump"])
def test_compiled_row_equals_generic_loop_on_sample_data(dump, request):
    mapping = load_mapping("nextcrm")
    source = DumpSource(str(request.getfixturevalue(dump)))
    checked = 0
    for table in mapping.tables.values():
        transform = TableTransform(mapping, table)
        checked += _assert_same(transform, source.iter_all(table.collection))
    assert checked > 10_000
