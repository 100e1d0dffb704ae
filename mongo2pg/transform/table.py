"""Per-table transform, compiled once from the mapping: document -> COPY text line, and the junction links
its arrays hold. The C row builder (_fastrow.c) settles the common documents from raw BSON; the rest take
the Python path (converters.py, compiled.py), which names every reject.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import bson
from bson import ObjectId

from ..ids import (
    bad_id_reason,
    oid_hex_from_uuid_hex,
    row_id,
    uuid_bytes_from_oid_bytes,
    uuid_hex_from_oid_hex,
    uuid_text,
)
from ..issues import FIXUP, REJECT, Issue
from ..mapping import Column, Mapping, Table
from ..source.codec import CODEC, to_extended_json
from . import linkstage
from .compiled import _Slow, compile_row
from .converters import NULL, Bad, _short, converter_for, copy_escape, timestamp_text

try:
    from ._fastrow import Plan as _RawPlan
except ImportError:  # built without a C compiler: every document takes the Python path
    _RawPlan = None


@dataclass
class BatchResult:
    lines: list[str] = field(default_factory=list)
    # aligned with lines, for late rejects: the document, or its raw BSON when the C row builder made the line
    docs: list[dict[str, Any] | bytes] = field(default_factory=list)
    uuids: list[str] = field(default_factory=list)  # aligned with lines: each row's id, as its line holds it
    stage: list[bytes] = field(default_factory=list)  # link stage tuples (linkstage.py)
    issues: list[Issue] = field(default_factory=list)
    rejected: int = 0
    last_id: str | None = None  # str() of the batch's last document's _id: where a live source resumes
    fixups: int = 0

# The C row builder's names for the column types it settles itself (mongo2pg/transform/_fastrow.c: enum kind).
_RAW_KINDS = {"uuid": 1, "text": 2, "integer": 3, "bigint": 4, "double": 5, "boolean": 6, "timestamp": 7,
              "enum": 8, "bytea": 9, "jsonb": 10, "text[]": 11, "uuid[]": 12, "integer[]": 13}
# ... and for what a missing or null value becomes (enum null_rule).
_NULL_IS_NULL, _NULL_IS_FILL, _NULL_IS_OID_TIME, _NULL_IS_SLOW = range(4)


class TableTransform:
    """Compiled transform for one table (and the junction arrays its collection holds)."""

    def __init__(self, mapping: Mapping, table: Table, duplicates: dict[str, Issue] | None = None):
        self.table = table
        # Documents that lose a unique key to one with a smaller _id (migration/unique.py), by _id hex.
        self.duplicates = duplicates or None
        self.columns = [c.name for c in table.columns]
        self._plan: list[tuple[str, Callable[[Any], str], Column, str | None]] = []
        for c in table.columns:
            if c.primary_key:
                continue
            fill_text = None
            if c.not_null and c.fill is not None and c.fill != "objectid_time":
                fill_text = converter_for(c, mapping)(c.fill)
            self._plan.append((c.source, converter_for(c, mapping), c, fill_text))
        self._plan_by_column = {step[2].name: step for step in self._plan}
        self._row = compile_row(mapping, self._plan)
        self._junctions = []
        for j, s in mapping.junction_sources(table.collection):
            own_is_left = s.holds == "right"
            self._junctions.append((j.name, s.field, own_is_left))
        self.known = frozenset({table.pk.source} | {c.source for c in table.columns}
                               | {s for _, s, _ in self._junctions} | set(table.drop))
        self.unknown_fields: Counter[str] = Counter()
        self.duplicate_links = 0
        # The C builder takes ObjectId ids only: a table of string ids takes the Python path.
        self._raw_row = self._raw_plan(mapping).row if _RawPlan is not None and not table.text_id else None

    def _raw_plan(self, mapping: Mapping):
        """The C row builder's plan (mongo2pg/transform/_fastrow.c): the same columns, fills and junctions as the
        compiled row, by field name bytes; it settles the common cases and leaves the rest to Python."""
        keys = sorted(self.known)
        index = {k: i for i, k in enumerate(keys)}
        fields = []
        for src, _, c, fill_text in self._plan:
            if not c.not_null:
                rule = _NULL_IS_NULL
            elif fill_text is not None:
                rule = _NULL_IS_FILL
            elif c.fill == "objectid_time":
                rule = _NULL_IS_OID_TIME
            else:
                rule = _NULL_IS_SLOW
            enum = ({v.encode(): copy_escape(v).encode() for v in mapping.enums[c.enum]} if c.type == "enum"
                    else None)
            fields.append((index[src], _RAW_KINDS.get(c.type, 0), rule,
                           fill_text.encode() if fill_text is not None else None, enum))
        junctions = tuple((index[fname], *linkstage.row_parts(jname, self.table.collection, fname), own_is_left)
                          for jname, fname, own_is_left in self._junctions)
        return _RawPlan(tuple(k.encode() for k in keys), index["_id"], tuple(fields), junctions)

    def convert_slow(self, doc: dict[str, Any], _id: ObjectId, own: str) -> str:
        """The generic loop, one converter call per column: the reference the compiled row follows."""
        return "\t".join([own] + [self._field_text(doc, _id, *step) for step in self._plan]) + "\n"

    def column_texts(self, doc: dict[str, Any], _id: ObjectId, names: Iterable[str]) -> list[str]:
        """The COPY texts the named columns get from this document (NULL as \\N); raises _FieldBad for a
        document the transform rejects."""
        return [self._field_text(doc, _id, *self._plan_by_column[n]) for n in names]

    def column_text(self, doc: dict[str, Any], _id: ObjectId, name: str) -> str | None:
        """The COPY text column `name` gets from `doc` (fill and NULL rules included), or None when this
        document's value would be rejected. Two values are the same to PostgreSQL when their texts are."""
        try:
            return self._field_text(doc, _id, *self._plan_by_column[name])
        except _FieldBad:
            return None

    @staticmethod
    def _field_text(doc: dict[str, Any], _id: ObjectId, src: str, conv: Callable[[Any], str], col: Column,
                    fill_text: str | None) -> str:
        v = doc.get(src)
        if v is None:
            if not col.not_null:
                return NULL
            if fill_text is not None:
                return fill_text
            if col.fill == "objectid_time":
                return timestamp_text(_id.generation_time)
            raise _FieldBad(src, Bad("missing_required", f"required field {src!r} is missing or null"))
        try:
            return conv(v)
        except Bad as bad:
            raise _FieldBad(src, bad) from None

    def convert_batch(self, docs: Iterable[dict[str, Any]]) -> BatchResult:
        out = BatchResult()
        for doc in docs:
            self._convert_doc(out, doc)
        return out

    def convert_raw_batch(self, raws: Iterable[bytes]) -> BatchResult:
        """The same as convert_batch on the decoded documents: each one's line from the C row builder when
        it settles the document, else from the Python path on the decoded document."""
        out = BatchResult()
        raw_row, duplicates = self._raw_row, self.duplicates
        if raw_row is None:
            for raw in raws:
                self._convert_doc(out, bson.decode(raw, CODEC))
            return out
        lines, kept, uuids, stage = out.lines, out.docs, out.uuids, out.stage
        last_own = None  # the last document's row id when the C builder made its line
        for raw in raws:
            r = raw_row(raw)
            if r is None or (duplicates is not None and oid_hex_from_uuid_hex(r[1]) in duplicates):
                self._convert_doc(out, bson.decode(raw, CODEC))
                last_own = None
                continue
            line, own, doc_stage, unknown, dups = r
            last_own = own
            lines.append(line)
            kept.append(raw)
            uuids.append(own)
            if doc_stage:
                stage += doc_stage
            if unknown is not None:
                self.unknown_fields.update(set(unknown))
            if dups:
                self.duplicate_links += dups
        if last_own is not None:
            out.last_id = oid_hex_from_uuid_hex(last_own)  # the ObjectId's hex, as str() gives it
        return out

    def _convert_doc(self, out: BatchResult, doc: dict[str, Any]) -> None:
        tname = self.table.name
        _id = doc.get("_id")
        out.last_id = None if _id is None else str(_id)
        bad = bad_id_reason(_id, self.table.text_id)
        if bad is not None:
            # the id as an operator searches for it (and as validation accounts for it): str(), not repr()
            out.issues.append(Issue(REJECT, tname, str(_id), None, "bad_id", "_id", bad, to_extended_json(doc)))
            out.rejected += 1
            return
        key = str(_id)  # an ObjectId's hex, a string id itself
        if self.duplicates is not None and key in self.duplicates:
            out.issues.append(replace(self.duplicates[key], document=to_extended_json(doc)))
            out.rejected += 1
            return
        own = copy_escape(_id) if self.table.text_id else uuid_hex_from_oid_hex(key)
        try:
            line = self._row(doc, _id, own)
        except (Bad, _Slow):
            try:
                line = self.convert_slow(doc, _id, own)
            except _FieldBad as fb:
                out.issues.append(Issue(REJECT, tname, key, row_id(_id), fb.bad.reason, fb.field,
                                        fb.bad.message, to_extended_json(doc)))
                out.rejected += 1
                return
        out.lines.append(line)
        out.docs.append(doc)
        out.uuids.append(own)
        if not self.known.issuperset(doc):
            self.unknown_fields.update(doc.keys() - self.known)
        for jname, fname, own_is_left in self._junctions:
            arr = doc.get(fname)
            if arr is not None and arr != []:
                self._stage_links(out, _id, own, jname, fname, own_is_left, arr)

    def _stage_links(self, out: BatchResult, _id: ObjectId, own: str, jname: str, fname: str,
                     own_is_left: bool, arr: Any) -> None:
        tname = self.table.name
        if not isinstance(arr, list):
            out.issues.append(Issue(FIXUP, tname, str(_id), uuid_text(_id), "junction_bad_value", fname,
                                    f"{fname} is {type(arr).__name__}, not an array: no links taken from it"))
            out.fixups += 1
            return
        seen: set[bytes] = set()
        head, tail = linkstage.row_parts(jname, self.table.collection, fname)
        own_id = bytes.fromhex(own)
        for e in arr:
            if type(e) is not ObjectId:
                out.issues.append(Issue(FIXUP, tname, str(_id), uuid_text(_id), "junction_bad_id", fname,
                                        f"array element {_short(e)} is not an ObjectId: link dropped"))
                out.fixups += 1
                continue
            other_id = uuid_bytes_from_oid_bytes(e.binary)
            if other_id in seen:
                self.duplicate_links += 1
                continue
            seen.add(other_id)
            left, right = (own_id, other_id) if own_is_left else (other_id, own_id)
            out.stage.append(linkstage.row(head, left, right, tail))


class _FieldBad(Exception):
    def __init__(self, field_name: str, bad: Bad):
        super().__init__(bad.message)
        self.field, self.bad = field_name, bad
