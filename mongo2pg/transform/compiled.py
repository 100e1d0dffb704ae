"""The compiled row: a table's converters folded into one generated function, the common case of each
type inline and every other case through its converter (TableTransform.convert_slow is the reference)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from bson import ObjectId
from bson.tz_util import utc as bson_utc

from ..ids import uuid_hex
from ..mapping import Column, Mapping
from .converters import INT32, INT64, NULL, copy_escape, timestamp_text


class _Slow(Exception):
    """The compiled row met a case it leaves to the generic loop (which names the failing field)."""


def _fast_expr(col: Column, var: str) -> list[str]:
    """Source lines turning `v` (not None) into the COPY text `var`: the common case inline, else the converter."""
    conv = f"_conv_{var}"
    if col.type == "uuid":
        return [f"{var} = _uuid_hex(v) if type(v) is ObjectId else {conv}(v)"]
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
                                 "timestamp_text": timestamp_text, "NULL": NULL, "_uuid_hex": uuid_hex}
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
