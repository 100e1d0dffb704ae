"""What the target must hold, computed from the source value and the mapping's declared type.

Independent of mongo2pg.transform by design: validation compares PostgreSQL's text output
with what is computed here, never with what the loader produced, so a transform bug cannot
agree with itself. Two levels:

- compile_expected_row: one row's expected values as PostgreSQL prints them, for the common case
  of each type: as a tuple equal to the row select_expr reads, or as the text chunk_digest_query
  hashes (validate proves whole chunks by that digest). A value it does not settle is marked SLOW,
  which makes the tuple differ and the text fail, and the caller goes down to the next level.
- expected_text / matches: the per-field rules for every case (NULL vs missing, fills, BSON
  types, numbers stored as strings, jsonb as relaxed extended JSON, ...).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bson import DatetimeMS, Decimal128, Int64, ObjectId, json_util
from psycopg2 import sql

from ..ids import IdFormatError, objectid_from_uuid, uuid_hex_from_oid_hex, uuid_text_from_oid_hex
from ..mapping import Column, Table

try:  # the C digest builder (setup builds it); without it every document takes the Python path below
    from ._fastdigest import DigestPlan as _RawDigest
except ImportError:  # pragma: no cover - a build without a C compiler
    _RawDigest = None

_INT_TEXT = re.compile(r"^[+-]?\d+$")
_RELAXED = json_util.JSONOptions(json_mode=json_util.JSONMode.RELAXED, tz_aware=True)
_JSON_STRING = json.encoder.encode_basestring  # the escapes PostgreSQL's JSON output uses, non-ASCII kept
SLOW = object()  # "compare this field by the full rules": equal to no text


class NoValue(Exception):
    """The source value cannot be represented: the record must have been rejected."""


def select_expr(col: Column) -> sql.Composable:
    """How validation reads a column: as text, timestamps at millisecond precision, arrays as JSON."""
    ident = sql.Identifier(col.name)
    if col.type == "timestamp":
        return sql.SQL("to_char({}, 'YYYY-MM-DD HH24:MI:SS.MS')").format(ident)
    if col.type in ("text[]", "uuid[]", "integer[]"):
        return sql.SQL("array_to_json({})::text").format(ident)
    return sql.SQL("{}::text").format(ident)


def _digest_expr(col: Column) -> sql.Composable:
    """As select_expr, but a UUID as the hex of its 16 bytes (cheaper to build from an ObjectId)."""
    if col.type == "uuid":
        return sql.SQL("encode(uuid_send({}), 'hex')").format(sql.Identifier(col.name))
    return select_expr(col)


# A chunk's rows as one text for its digest: fields and rows separated by ROW_SEP, NULL as NULL_MARK.
ROW_SEP, NULL_MARK = "\x1f", "\x1e"


def chunk_digest_query(table: Table) -> sql.Composable:
    """(count, NULLs, sha256 hex) of the rows over an id range, in id order, each row its _digest_expr
    texts joined as compile_expected_row(form="digest") joins the expected ones, a NULL as NULL_MARK.

    Equal texts and equal NULL counts prove the rows: every NULL_MARK of the text is then a NULL, since
    the expected text holds no other (rows.py checks), so a value holding one cannot pass for a NULL;
    a value holding ROW_SEP adds a separator the expected text lacks. (Counting the NULLs costs less than
    escaping every value.)"""
    sep, null = sql.SQL(f"chr({ord(ROW_SEP)})"), sql.SQL(f"chr({ord(NULL_MARK)})")
    fields = [_digest_expr(table.pk)] + [_digest_expr(c) for c in table.columns if not c.primary_key]
    # concat_ws copies each value once, where a chain of || copies the row built so far at every field
    # (three quarters of the query on production-sized invoices); with every NULL coalesced it skips none.
    row = sql.SQL("concat_ws({sep}, {fields})").format(sep=sep, fields=sql.SQL(", ").join(
        sql.SQL("coalesce({f}, {n})").format(f=f, n=null) for f in fields))
    nulls = sql.SQL("num_nulls({})").format(sql.SQL(", ").join(sql.Identifier(c.name) for c in table.columns))
    # Rows from a subquery sorted by the key: the primary key's index scan yields them in order, where an
    # ORDER BY inside string_agg sorts them again (a sixth of the query). Should the order ever differ, the
    # digest differs and the chunk goes to the row-by-row check: slower, never wrong.
    return sql.SQL("SELECT count(*), coalesce(sum(n), 0), "
                   "encode(sha256(convert_to(coalesce(string_agg(r, {sep}), ''), 'UTF8')), 'hex') "
                   "FROM (SELECT {row} AS r, {nulls} AS n FROM {t} WHERE {pk} BETWEEN %s AND %s ORDER BY {pk}) s").format(
        row=row, nulls=nulls, sep=sep, t=sql.Identifier(table.name), pk=sql.Identifier(table.pk.name))


def ms_text(dt: datetime) -> str:
    """A UTC instant as select_expr reads a TIMESTAMP(3)."""
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return dt.isoformat(" ", "milliseconds")


def _oid_hex(v: Any) -> str:
    if isinstance(v, ObjectId):
        return str(v)
    if isinstance(v, str) and ObjectId.is_valid(v) and len(v) == 24:
        return v.lower()
    raise NoValue(f"not an ObjectId: {v!r}")


def expected_text(col: Column, v: Any, enums: dict[str, tuple[str, ...]]) -> Any:
    """What PostgreSQL must return (as compared by `matches`) for source value v (not None)."""
    t = col.type
    if t == "uuid":
        return _oid_hex(v)
    if t == "text":
        if isinstance(v, bool) or not isinstance(v, str | int | float | Decimal128 | ObjectId):
            raise NoValue(f"{type(v).__name__} in a text column")
        return str(v)  # also plain text of str subclasses (BSON Code)
    if t in ("integer", "bigint"):
        if isinstance(v, bool):
            raise NoValue("boolean in a number column")
        if isinstance(v, str) and _INT_TEXT.match(v.strip()):
            return int(v.strip())
        if isinstance(v, Decimal128):
            v = v.to_decimal()
        if isinstance(v, int | float) or hasattr(v, "to_integral_value"):
            n = int(v)
            if n != v:
                raise NoValue("non-integral number")
            return n
        raise NoValue(f"{type(v).__name__} in a number column")
    if t == "double":
        return float(v.to_decimal()) if isinstance(v, Decimal128) else float(v)
    if t == "boolean":
        if not isinstance(v, bool):
            raise NoValue("not a boolean")
        return "true" if v else "false"
    if t == "timestamp":
        if isinstance(v, DatetimeMS):
            raise NoValue("date outside years 1-9999")
        if isinstance(v, str):
            v = datetime.fromisoformat(v.strip().replace("Z", "+00:00"))
            v = v if v.tzinfo else v.replace(tzinfo=UTC)
        if not isinstance(v, datetime):
            raise NoValue("not a date")
        return ms_text(v)
    if t == "jsonb":
        return json.loads(json_util.dumps(v, json_options=_RELAXED))
    if t == "bytea":  # bytea's text output: \x and the hex of the bytes
        if not isinstance(v, bytes):
            raise NoValue("not binary data")
        return "\\x" + bytes(v).hex()
    if t == "enum":
        if v not in enums[col.enum]:
            raise NoValue("not an enum value")
        return v
    if t in ("text[]", "uuid[]", "integer[]"):
        if not isinstance(v, list):
            raise NoValue("not an array")
        if t == "uuid[]":
            return [None if e is None else _oid_hex(e) for e in v]
        if t == "integer[]":
            return [None if e is None else int(e) for e in v]
        return [None if e is None else (e if isinstance(e, str) else str(e)) for e in v]
    raise NoValue(f"unknown type {t}")


def matches(col: Column, expected: Any, actual: str | None) -> bool:
    if actual is None:
        return expected is None
    if expected is None:
        return False
    t = col.type
    if t == "uuid":
        try:
            return str(objectid_from_uuid(actual)) == expected
        except IdFormatError:
            return False
    if t in ("integer", "bigint"):
        return int(actual) == expected
    if t == "double":
        a = float(actual)
        return a == expected or (math.isnan(a) and math.isnan(expected))
    if t in ("jsonb", "text[]", "integer[]"):
        return json.loads(actual) == expected
    if t == "uuid[]":
        got = json.loads(actual)
        try:
            return [None if g is None else str(objectid_from_uuid(g)) for g in got] == expected
        except IdFormatError:
            return False
    return actual == expected



class _Unsettled(Exception):
    pass


def _jsonb_key(k: str) -> tuple[int, bytes]:
    b = k.encode("utf-8", "surrogatepass")
    return len(b), b


def pg_jsonb_text(v: Any) -> str:
    """v as PostgreSQL prints a jsonb holding it: object keys shorter first then bytewise, ", " and ": ".
    Raises _Unsettled for anything but plain JSON values (BSON types, non-finite floats)."""
    t = type(v)
    if t is str:
        return _JSON_STRING(v)
    if t is dict:
        if not all(type(k) is str for k in v):
            raise _Unsettled
        return "{" + ", ".join(_JSON_STRING(k) + ": " + pg_jsonb_text(v[k]) for k in sorted(v, key=_jsonb_key)) + "}"
    if t is list:
        return "[" + ", ".join(map(pg_jsonb_text, v)) + "]"
    if t is int or t is Int64:
        return str(v)
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "null"
    if t is float and math.isfinite(v):
        return repr(v)
    raise _Unsettled


def _jsonb_or_slow(v: Any) -> Any:
    try:
        return pg_jsonb_text(v)
    except _Unsettled:
        return SLOW


def _text_array_or_slow(v: Any) -> Any:
    """A list of strings as array_to_json prints it ("," between elements)."""
    if type(v) is not list or not all(type(e) is str for e in v):
        return SLOW
    return "[" + ",".join(map(_JSON_STRING, v)) + "]"


# int64 values decode as Int64 (a subclass of int)
_INTEGER_FAST = ["{e} = None if v is None else str(v) if type(v) is int or type(v) is Int64 else SLOW"]
_FAST = {
    "uuid": ["if v is None: {e} = None",
             "elif type(v) is ObjectId:",
             "    h = v.binary.hex()",
             "    {e} = " + "{uuid}",
             "else: {e} = SLOW"],
    "integer": _INTEGER_FAST,
    "bigint": _INTEGER_FAST,
    "double": ["{e} = None if v is None else repr(v) if type(v) is float else SLOW"],
    "boolean": ["{e} = None if v is None else 'true' if v is True else 'false' if v is False else SLOW"],
    # naive datetimes are UTC (dumpfmt.CODEC): ms_text, inline
    "timestamp": ["{e} = None if v is None else v.isoformat(' ', 'milliseconds') if type(v) is datetime and "
                  "v.tzinfo is None else SLOW"],
    "jsonb": ["{e} = None if v is None else jsonb(v)"],
    "text[]": ["{e} = None if v is None else text_array(v)"],
    "uuid[]": ["{e} = None if v is None else SLOW"],
    "bytea": ["{e} = None if v is None else '\\\\x' + v.hex() if type(v) is bytes else SLOW"],
    "integer[]": ["{e} = None if v is None else SLOW"],
}
_UUID_FORMS = {"row": "uuid_text_from_oid_hex(h)", "digest": "uuid_hex_from_oid_hex(h)"}


# Text and enum values are expected as they are: PostgreSQL's text equals a str, and any other type
# (a number in a text column, say) differs from the row's text, or fails the digest's join, which
# sends the row to the full rules.
_AS_IS = {"text", "enum"}


def compile_expected_row(table: Table, form: str = "row") -> Callable[[dict[str, Any], str], Any]:
    """The expected row of a document, for the common case of each type, in one of two forms:

    - "row": `expect(doc, uuid_text) -> tuple`, equal to the row `SELECT id::text, <select_expr of each
      non-key column>` returns when the row holds exactly what the document says;
    - "digest": `expect(doc, uuid_hex) -> (text, nulls)`, the row's text as chunk_digest_query joins it,
      and how many NULL_MARKs it holds as NULLs (TypeError when a value is left to the full rules).

    Fills and fix-ups aside (those rows differ, and the full rules settle them).
    """
    cols = [(i, c) for i, c in enumerate(table.columns) if not c.primary_key]
    namespace: dict[str, Any] = {"ObjectId": ObjectId, "Int64": Int64, "datetime": datetime, "SLOW": SLOW, "ms_text": ms_text,
                                 "uuid_text_from_oid_hex": uuid_text_from_oid_hex, "uuid_hex_from_oid_hex": uuid_hex_from_oid_hex,
                                 "jsonb": _jsonb_or_slow, "text_array": _text_array_or_slow,
                                 "FIELDS": tuple(c.source for _, c in cols), "SEP": ROW_SEP, "NUL": NULL_MARK}
    body = ["def expect(doc, own):"]
    if cols:
        # Every field at once: map calls doc.get from C, cheaper than a call per field from Python.
        body.append(f"    {', '.join(f'v{i}' for i, _ in cols)}, = map(doc.get, FIELDS)")
    names = []
    for i, c in cols:
        if c.type in _AS_IS:
            names.append(f"v{i}")
            continue
        body.append(f"    v = v{i}")
        body += ["    " + line.format(e=f"e{i}", uuid=_UUID_FORMS[form]) for line in _FAST[c.type]]
        names.append(f"e{i}")
    if form == "row":
        body.append(f"    return (own, {', '.join(names)}{',' if len(names) == 1 else ''})")
    else:
        body.append(f"    return SEP.join((own, {''.join(f'NUL if {n} is None else {n}, ' for n in names)})), "
                    f"{' + '.join(f'({n} is None)' for n in names) or '0'}")
    exec("\n".join(body), namespace)  # noqa: S102 - source built above from the validated mapping only
    return namespace["expect"]


# The C digest builder's names for the types (mongo2pg/validation/_fastdigest.c: enum dkind): the same
# rules as _FAST and _AS_IS above, uuid[] and integer[] settled only when NULL.
_RAW_DIGEST_KINDS = {"text": 1, "enum": 1, "uuid": 2, "integer": 3, "bigint": 3, "double": 4, "boolean": 5,
                     "timestamp": 6, "jsonb": 7, "text[]": 8, "bytea": 9, "uuid[]": 10, "integer[]": 10}


def compile_raw_digest(table: Table, links: list[tuple[set[bytes], str, bool]]) -> Any:
    """The C twin of compile_expected_row(table, "digest") for raw BSON, which also adds each document's
    junction links to their sets as rows.py does: `plan.row(raw) -> (uuid_hex, text bytes or None, nulls)`,
    None when the document is for the Python path whole (unreadable here, or an _id that is no ObjectId).
    None when the builder is not built."""
    if _RawDigest is None:
        return None
    keys: dict[str, int] = {"_id": 0}
    key = lambda name: keys.setdefault(name, len(keys))  # noqa: E731
    cols = tuple((key(c.source), _RAW_DIGEST_KINDS[c.type]) for c in table.columns if not c.primary_key)
    spec = tuple((key(field), own_is_left, links_set) for links_set, field, own_is_left in links)
    return _RawDigest(tuple(k.encode() for k in keys), 0, cols, spec)
