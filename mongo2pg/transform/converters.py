"""The column converters: a document's value -> its COPY text, one function per column type.

A value that cannot be converted raises Bad(reason, message); the record is then rejected with that reason
code (docs/data-rules.md), never silently altered.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bson import DatetimeMS, Decimal128, ObjectId, json_util

from ..ids import uuid_hex
from ..mapping import Column, Mapping

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

def converter_for(col: Column, mapping: Mapping) -> Callable[[Any], str]:
    return make_enum(mapping.enums[col.enum], col.enum) if col.type == "enum" else CONVERTERS[col.type]
