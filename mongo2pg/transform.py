"""Per-table transform, compiled once from the mapping: document -> COPY text line.

Each column gets a converter chosen by its declared type. A value that cannot be
converted raises Bad(reason, message); the record is then rejected with that reason
code (see README, "Data conversion rules"), never silently altered.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import bson
from bson import DatetimeMS, Decimal128, ObjectId, json_util
from bson.tz_util import utc as bson_utc

from . import linkstage
from .dumpfmt import CODEC, to_extended_json
from .ids import uuid_bytes_from_oid_bytes, uuid_hex, uuid_text
from .issues import FIXUP, REJECT, Issue
from .mapping import Column, Mapping, Table

try:
    from ._fastrow import Plan as _RawPlan
except ImportError:  # built without a C compiler: every document takes the Python path
    _RawPlan = None

NULL = "\\N"
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
_COPY_ESCAPE = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_INT_TEXT = re.compile(r"^[+-]?\d+$")
_RELAXED = json_util.JSONOptions(json_mode=json_util.JSONMode.RELAXED, tz_aware=True)
_MISSING = object()


class Bad(Exception):
    """A value that cannot be converted: reason code + message."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason, self.message = reason, message


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


def copy_escape(text: str) -> str:
    return text.translate(_COPY_ESCAPE)


def _check_text(s: str) -> str:
    if "\x00" in s:
        raise Bad("nul_in_string", "string holds a NUL byte, which PostgreSQL text cannot store")
    if not s.isascii():
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:
            raise Bad("invalid_utf8", "string is not valid UTF-8") from None
    return s


def _as_oid(v: Any) -> ObjectId:
    if type(v) is ObjectId:
        return v
    if isinstance(v, str) and len(v) == 24 and ObjectId.is_valid(v):
        return ObjectId(v)
    raise Bad("type_mismatch", f"expected an ObjectId, got {type(v).__name__} {_short(v)}")


def _short(v: Any) -> str:
    r = repr(v)
    return r if len(r) <= 80 else r[:77] + "..."


# ---- converters: value (not None) -> COPY field text ----------------------------------------

def conv_uuid(v: Any) -> str:
    return uuid_hex(_as_oid(v))


def conv_text(v: Any) -> str:
    if isinstance(v, str):
        return copy_escape(_check_text(v))
    if isinstance(v, bool):
        raise Bad("type_mismatch", f"expected a string, got boolean {v}")
    if isinstance(v, int | float | Decimal128):
        return str(v)
    if type(v) is ObjectId:
        return str(v)
    raise Bad("type_mismatch", f"expected a string, got {type(v).__name__} {_short(v)}")


def _integer(v: Any, lo: int, hi: int, label: str) -> str:
    if isinstance(v, bool):
        raise Bad("type_mismatch", f"expected an {label}, got boolean {v}")
    if isinstance(v, int):
        n = v
    elif isinstance(v, float):
        if not math.isfinite(v) or not v.is_integer():
            raise Bad("type_mismatch", f"expected an {label}, got non-integral number {v!r}")
        n = int(v)
    elif isinstance(v, Decimal128):
        d = v.to_decimal()
        if not d.is_finite() or d != d.to_integral_value():
            raise Bad("type_mismatch", f"expected an {label}, got decimal {d}")
        n = int(d)
    elif isinstance(v, str) and _INT_TEXT.match(v.strip()):
        n = int(v.strip())  # numbers stored as strings convert when exact
    else:
        raise Bad("type_mismatch", f"expected an {label}, got {type(v).__name__} {_short(v)}")
    if not lo <= n <= hi:
        raise Bad("int_out_of_range", f"{n} does not fit in a PostgreSQL {label} ({lo}..{hi})")
    return str(n)


def conv_integer(v: Any) -> str:
    return _integer(v, *INT32, "integer")


def conv_bigint(v: Any) -> str:
    return _integer(v, *INT64, "bigint")


def conv_double(v: Any) -> str:
    if isinstance(v, bool) or not isinstance(v, int | float | Decimal128):
        raise Bad("type_mismatch", f"expected a number, got {type(v).__name__} {_short(v)}")
    f = float(v.to_decimal()) if isinstance(v, Decimal128) else float(v)
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "Infinity" if f > 0 else "-Infinity"
    return repr(f)


def conv_bytea(v: Any) -> str:
    """BSON binary (any subtype) -> bytea's hex input, its backslash doubled for COPY text."""
    if isinstance(v, bytes):  # bson.Binary is a bytes subclass
        return "\\\\x" + bytes(v).hex()
    raise Bad("type_mismatch", f"expected binary data, got {type(v).__name__} {_short(v)}")


def conv_boolean(v: Any) -> str:
    if v is True:
        return "t"
    if v is False:
        return "f"
    raise Bad("type_mismatch", f"expected a boolean, got {type(v).__name__} {_short(v)}")


def timestamp_text(dt: datetime) -> str:
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return dt.isoformat(sep=" ", timespec="milliseconds")


def conv_timestamp(v: Any) -> str:
    if isinstance(v, datetime):
        return timestamp_text(v)
    if isinstance(v, DatetimeMS):
        raise Bad("date_out_of_range", f"date {int(v)} ms since 1970 is outside years 1-9999")
    if isinstance(v, str):
        try:
            dt = datetime.fromisoformat(v.strip().replace("Z", "+00:00"))
        except ValueError:
            raise Bad("type_mismatch", f"expected a date, got unparseable string {_short(v)}") from None
        return timestamp_text(dt if dt.tzinfo else dt.replace(tzinfo=UTC))
    raise Bad("type_mismatch", f"expected a date, got {type(v).__name__} {_short(v)}")


_JSON_ENCODE = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode
_JSON_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")  # an escaped NUL, not an escaped backslash before "u0000"


def conv_jsonb(v: Any) -> str:
    try:
        text = _JSON_ENCODE(v)
    except (TypeError, ValueError):
        text = json_util.dumps(v, json_options=_RELAXED, ensure_ascii=False)  # BSON types -> extended JSON
    if not text.isascii():
        _check_text(text)
    if "\\" in text:
        if _JSON_NUL.search(text):
            raise Bad("nul_in_string", "JSON value holds a NUL character, which jsonb cannot store")
        # JSON text escapes every control character, so a backslash is all that COPY needs escaped
        text = text.replace("\\", "\\\\")
    return text


def _array_elem(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def conv_text_array(v: Any) -> str:
    if not isinstance(v, list):
        raise Bad("type_mismatch", f"expected an array, got {type(v).__name__} {_short(v)}")
    parts = []
    for e in v:
        if e is None:
            parts.append("NULL")
        elif isinstance(e, str):
            parts.append(_array_elem(_check_text(e)))
        elif isinstance(e, int | float) and not isinstance(e, bool):
            parts.append(_array_elem(str(e)))
        else:
            raise Bad("type_mismatch", f"array element is {type(e).__name__} {_short(e)}, expected string")
    return copy_escape("{" + ",".join(parts) + "}")


def conv_uuid_array(v: Any) -> str:
    if not isinstance(v, list):
        raise Bad("type_mismatch", f"expected an array of ObjectIds, got {type(v).__name__}")
    return "{" + ",".join("NULL" if e is None else uuid_hex(_as_oid(e)) for e in v) + "}"


def conv_integer_array(v: Any) -> str:
    if not isinstance(v, list):
        raise Bad("type_mismatch", f"expected an array of integers, got {type(v).__name__}")
    return "{" + ",".join("NULL" if e is None else _integer(e, *INT32, "integer") for e in v) + "}"


def make_enum(values: tuple[str, ...], name: str) -> Callable[[Any], str]:
    allowed = frozenset(values)

    def conv_enum(v: Any) -> str:
        if isinstance(v, str) and v in allowed:
            return copy_escape(v)
        raise Bad("enum_invalid", f"{_short(v)} is not a value of enum {name} {list(values)}")

    return conv_enum


CONVERTERS: dict[str, Callable[[Any], str]] = {
    "uuid": conv_uuid, "text": conv_text, "integer": conv_integer, "bigint": conv_bigint, "double": conv_double,
    "boolean": conv_boolean, "timestamp": conv_timestamp, "jsonb": conv_jsonb, "bytea": conv_bytea, "text[]": conv_text_array,
    "uuid[]": conv_uuid_array, "integer[]": conv_integer_array,
}


# The C row builder's names for the column types it settles itself (mongo2pg/_fastrow.c: enum kind).
_RAW_KINDS = {"uuid": 1, "text": 2, "integer": 3, "bigint": 4, "double": 5, "boolean": 6, "timestamp": 7,
              "enum": 8, "bytea": 9, "jsonb": 10, "text[]": 11, "uuid[]": 12, "integer[]": 13}
# ... and for what a missing or null value becomes (enum null_rule).
_NULL_IS_NULL, _NULL_IS_FILL, _NULL_IS_OID_TIME, _NULL_IS_SLOW = range(4)


def converter_for(col: Column, mapping: Mapping) -> Callable[[Any], str]:
    return make_enum(mapping.enums[col.enum], col.enum) if col.type == "enum" else CONVERTERS[col.type]


# ---- the compiled row: the common case of each type inline, every other case through its converter ----

class _Slow(Exception):
    """The compiled row met a case it leaves to the generic loop (which names the failing field)."""


def _fast_expr(col: Column, var: str) -> list[str]:
    """Source lines turning `v` (not None) into the COPY text `var`: the common case inline, else the converter."""
    conv = f"_conv_{var}"
    if col.type == "uuid":
        return ["if type(v) is ObjectId:", "    h = v.binary.hex()",
                f"    {var} = h[:12] + '80008000' + h[12:]", f"else: {var} = {conv}(v)"]  # ids.uuid_hex
    if col.type == "text":
        # printable (no NUL, tab, newline, CR or lone surrogate) and no backslash: COPY text as it is
        return [f"{var} = v if type(v) is str and v.isprintable() and '\\\\' not in v else {conv}(v)"]
    if col.type in ("integer", "bigint"):
        lo, hi = INT32 if col.type == "integer" else INT64
        return [f"{var} = str(v) if type(v) is int and {lo} <= v <= {hi} else {conv}(v)"]
    if col.type == "boolean":
        return [f"{var} = 't' if v is True else 'f' if v is False else {conv}(v)"]
    if col.type == "timestamp":
        # UTC (or naive UTC) datetimes: isoformat's first 23 characters are the timestamp(3) text
        return [f"{var} = v.isoformat(' ', 'milliseconds')[:23] if type(v) is datetime and "
                f"(v.tzinfo is None or v.tzinfo is _UTC) else {conv}(v)"]
    if col.type == "enum":
        return [f"{var} = _enum_{var}.get(v) if type(v) is str else None", f"if {var} is None: {var} = {conv}(v)"]
    return [f"{var} = {conv}(v)"]


def compile_row(mapping: Mapping, plan: list[tuple[str, Callable[[Any], str], Column, str | None]]
                ) -> Callable[[dict[str, Any], ObjectId, str], str]:
    """Build `row(doc, _id, own) -> COPY line` from a table's plan (TableTransform._plan: source field,
    converter, column, fill text for each non-key column), once.

    Semantics are those of TableTransform.convert_slow (tests compare both on every kind of value); a case
    it does not settle inline raises Bad or _Slow, and the caller reruns the generic loop for the message.
    """
    namespace: dict[str, Any] = {"ObjectId": ObjectId, "datetime": datetime, "_UTC": bson_utc, "_Slow": _Slow,
                                 "timestamp_text": timestamp_text, "NULL": NULL}
    body = ["def row(doc, _id, own):", "    g = doc.get"]
    names = []
    for i, (src, conv, c, fill_text) in enumerate(plan):
        var = f"f{i}"
        names.append(var)
        namespace[f"_conv_{var}"] = conv
        if c.type == "enum":
            namespace[f"_enum_{var}"] = {v: copy_escape(v) for v in mapping.enums[c.enum]}
        body.append(f"    v = g({src!r})")
        if not c.not_null:
            body.append(f"    if v is None: {var} = NULL")
        elif fill_text is not None:
            namespace[f"_fill_{var}"] = fill_text
            body.append(f"    if v is None: {var} = _fill_{var}")
        elif c.fill == "objectid_time":
            body.append(f"    if v is None: {var} = timestamp_text(_id.generation_time)")
        else:
            body.append("    if v is None: raise _Slow")
        body.append("    else:")
        body += ["        " + line for line in _fast_expr(c, var)]
    body.append("    return f\"{own}" + "".join(f"\\t{{{n}}}" for n in names) + "\\n\"")
    exec("\n".join(body), namespace)  # noqa: S102 - source built above from the validated mapping only
    return namespace["row"]


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
        self._raw_row = self._raw_plan(mapping).row if _RawPlan is not None else None

    def _raw_plan(self, mapping: Mapping):
        """The C row builder's plan (mongo2pg/_fastrow.c): the same columns, fills and junctions as the
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
            if r is None or (duplicates is not None and r[1][:12] + r[1][20:] in duplicates):
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
            out.last_id = last_own[:12] + last_own[20:]  # the ObjectId's hex, as str() gives it
        return out

    def _convert_doc(self, out: BatchResult, doc: dict[str, Any]) -> None:
        tname = self.table.name
        _id = doc.get("_id")
        out.last_id = None if _id is None else str(_id)
        if type(_id) is not ObjectId:
            # the id as an operator searches for it (and as validation accounts for it): str(), not repr()
            out.issues.append(Issue(REJECT, tname, str(_id), None, "bad_id",
                                    "_id", f"_id is {type(_id).__name__}, not an ObjectId: no UUID can be derived",
                                    to_extended_json(doc)))
            out.rejected += 1
            return
        h = _id.binary.hex()
        if self.duplicates is not None and h in self.duplicates:
            out.issues.append(replace(self.duplicates[h], document=to_extended_json(doc)))
            out.rejected += 1
            return
        own = h[:12] + "80008000" + h[12:]  # ids.uuid_hex, inline
        try:
            line = self._row(doc, _id, own)
        except (Bad, _Slow):
            try:
                line = self.convert_slow(doc, _id, own)
            except _FieldBad as fb:
                out.issues.append(Issue(REJECT, tname, str(_id), uuid_text(_id), fb.bad.reason, fb.field,
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
