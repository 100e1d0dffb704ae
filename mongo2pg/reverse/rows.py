"""One row back to its document's fields, by the inverse of the mapping.

A value is compared with the document's as the forward transform sees both (their COPY texts, fill and
NULL rules included), so only fields whose value PostgreSQL holds differently are written: fields the
mapping ignored or filled stay as they are in MongoDB.
"""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any

from bson import ObjectId, json_util

from ..ids import IdFormatError, objectid_from_uuid
from ..mapping import Column, Table
from ..transform import TableTransform

_RELAXED = json_util.JSONOptions(json_mode=json_util.JSONMode.RELAXED, tz_aware=True)


class ObjectIds:
    """UUID -> ObjectId: the reversible scheme for migrated rows; for a row the application created (a
    random UUID) a new ObjectId, recorded in mongo2pg.reverse_ids before any document uses it, so every
    reference to that row, on every run, converts to the same one."""

    def __init__(self, conn):
        self.conn = conn
        self.known: dict[str, ObjectId] = {}

    def of(self, value: Any, create: bool = True) -> ObjectId | None:
        text = str(value)
        oid = self.known.get(text)
        if oid is not None:
            return oid
        try:
            oid = objectid_from_uuid(text)
        except IdFormatError:
            oid = self._recorded(text, create)
        if oid is not None:
            self.known[text] = oid
        return oid

    def _recorded(self, text: str, create: bool) -> ObjectId | None:
        with self.conn.cursor() as cur:
            if create:
                cur.execute("INSERT INTO mongo2pg.reverse_ids (uuid, oid) VALUES (%s, %s) ON CONFLICT (uuid) DO NOTHING",
                            (text, str(ObjectId())))
            cur.execute("SELECT oid FROM mongo2pg.reverse_ids WHERE uuid = %s", (text,))
            found = cur.fetchone()
        self.conn.commit()  # recorded before MongoDB sees it
        return ObjectId(found[0]) if found else None


def to_bson(value: Any, col: Column, ids: ObjectIds) -> Any:
    """A PostgreSQL value (as psycopg2 returns it) -> the BSON value its document field holds."""
    if value is None:
        return None
    t = col.type
    if t == "uuid":
        return str(ids.of(value)) if col.stored_as == "hex" else ids.of(value)
    if t == "uuid[]":
        return [None if e is None else ids.of(e) for e in value]
    if t == "timestamp":  # BSON dates hold milliseconds
        return value.replace(tzinfo=UTC, microsecond=value.microsecond // 1000 * 1000)
    if t == "jsonb":  # extended JSON ({"$oid": ...}, {"$date": ...}) back to BSON types
        return json_util.loads(json.dumps(value), json_options=_RELAXED)
    if t == "double":
        return float(value)
    if t == "bytea":  # psycopg2 reads bytea as a memoryview
        return bytes(value)
    return value  # text, enum, integer, bigint, boolean, text[], integer[]


def row_fields(table: Table, tt: TableTransform, row: dict[str, Any], doc: dict[str, Any] | None,
               oid: ObjectId, ids: ObjectIds) -> dict[str, Any]:
    """The fields of `doc` (None: no document yet) to set so that it converts to `row` again."""
    current = doc or {}
    out = {}
    for c in table.columns:
        if c.primary_key:
            continue
        value = to_bson(row[c.name], c, ids)
        wanted = tt.column_text({c.source: value}, oid, c.name)
        if tt.column_text(current, oid, c.name) != wanted:
            out[c.source] = value
    return out


def merged_array(current: Any, wanted: list[ObjectId]) -> list[ObjectId] | None:
    """A link array holding exactly the links `wanted` (None: `current` holds them already): the ids it
    keeps in their order, then the new ones."""
    held = [e for e in current if type(e) is ObjectId] if isinstance(current, list) else []
    if set(held) == set(wanted) and (current is not None or not wanted):
        return None
    keep, seen, out = set(wanted), set(), []
    for e in held + wanted:
        if e in keep and e not in seen:
            seen.add(e)
            out.append(e)
    return out
