"""One Prisma field -> its mapping column: the type (a relation's scalar takes the referenced id's), the
keys, the defaults in the database, the attributes Prisma Client acts on, the foreign key."""

from __future__ import annotations

import json
from typing import Any

from .shapes import ACTIONS, LISTS, SCALARS, PrismaSchema, UnsupportedPrisma, db_name, object_id


def column(s: PrismaSchema, model: dict, f: dict, relation: dict | None) -> dict[str, Any]:
    where = f"{model['name']}.{f['name']}"
    db = db_name(f)
    col: dict[str, Any] = {"name": "id" if f.get("isId") and db == "_id" else db}
    if db != col["name"]:
        col["source"] = db
    prisma: dict[str, str] = {}
    if f["name"] != col["name"]:
        prisma["field"] = f["name"]
    if f["kind"] == "object":  # a composite type: its document, as jsonb
        col["type"] = "jsonb"
    elif f["kind"] == "enum":
        col.update({"type": "text[]"} if f["isList"] else {"type": "enum", "enum": f["type"]})
    elif object_id(f) or (relation is not None and object_id(_referenced_id(s, where, relation))):
        # A relation's scalar holds the referenced @id: an ObjectId, or its 24 hex digits where the schema
        # declares a plain String (the Auth.js adapter's `userId String`); either converts to the same UUID,
        # and any other value is a reject naming the field.
        col["type"] = "uuid[]" if f["isList"] else "uuid"
        if not object_id(f) and not f["isList"]:
            col["stored_as"] = "hex"
    elif f["isList"]:
        col["type"] = LISTS.get(f["type"], "jsonb")
    elif f["type"] in SCALARS:
        col["type"] = SCALARS[f["type"]]
    else:
        raise UnsupportedPrisma(f"{where}: type {f['type']} has no column type in a mapping. Fix: give the field "
                                "a Prisma type (String, Int, BigInt, Float, Boolean, DateTime, Json, Bytes, an enum "
                                "or a composite type), or map it by hand in a mapping (docs/prisma.md)")
    if f.get("isId"):
        col["primary_key"] = True
        if col["type"] not in ("uuid", "text"):
            raise UnsupportedPrisma(f"{where}: an @id of type {f['type']} is not supported: ids are ObjectIds "
                                    "(converted to UUIDs) or Strings (kept as they are). Fix: map this model by "
                                    "hand in a mapping (docs/prisma.md)")
    elif f["isRequired"] and not f["isList"]:
        col["required"] = True
    _default(s, col, f, object_ids=not s.string_ids(model["name"]))
    kept = _client_attributes(s, f)
    if kept:
        prisma["attributes"] = kept
    if relation is not None:
        target = s.models[relation["type"]]
        col["references"] = s.table(target["name"])
        col["on_delete"] = ACTIONS[relation.get("relationOnDelete") or ("Restrict" if f["isRequired"] else "SetNull")]
        if relation.get("relationOnUpdate"):
            col["on_update"] = ACTIONS[relation["relationOnUpdate"]]
        col["on_dangling"] = "reject" if f["isRequired"] else "null"
        back = next((g["name"] for g in target["fields"] if g["kind"] == "object"
                     and g.get("relationName") == relation["relationName"] and g is not relation), None)
        prisma.update({"relation": relation["relationName"], "relation_field": relation["name"]})
        if back:
            prisma["back_field"] = back
    if prisma:
        col["prisma"] = prisma
    return col


def _referenced_id(s: PrismaSchema, where: str, relation: dict) -> dict:
    """The @id field a to-one relation references; a relation to any other field is refused, named."""
    target = s.models[relation["type"]]
    to = relation.get("relationToFields") or []
    ids = [g for g in target["fields"] if g.get("isId")]
    if len(to) != 1 or not ids or to[0] != ids[0]["name"]:
        raise UnsupportedPrisma(
            f"{where}: its relation {relation['name']} references {target['name']}.{', '.join(to) or '?'}, which "
            f"is not {target['name']}'s @id: a PostgreSQL foreign key here references the migrated id. Fix: "
            f"reference {target['name']}.{ids[0]['name'] if ids else 'its @id'} in the schema given to from-prisma "
            "(or map this field by hand in a mapping: docs/prisma.md)")
    return ids[0]


def _default(s: PrismaSchema, col: dict[str, Any], f: dict, object_ids: bool) -> None:
    d = f.get("default")
    if d is None or f.get("isId"):
        return
    if isinstance(d, dict):
        if d.get("name") == "now":
            col["default"] = "CURRENT_TIMESTAMP"
            if col.get("required") and object_ids:  # a document lacking it: its ObjectId's time
                col["fill"] = "objectid_time"
        return  # auto(), uuid(), cuid(), dbgenerated(): nothing a document lacks can take
    if f["kind"] == "enum":
        stored = s.stored(f["type"])
        d = [stored.get(v, v) for v in d] if isinstance(d, list) else stored.get(d, d)
    if isinstance(d, list):
        # a scalar list's default: the column's too (an array literal); an absent list is left NULL
        col["default"] = "'" + array_literal(d).replace("'", "''") + "'"
        return
    if f["type"] in ("Int", "BigInt", "Float") and not isinstance(d, bool):
        d = float(d) if f["type"] == "Float" else int(d)  # the DMMF gives a BigInt's default as a string
    if isinstance(d, bool):
        col["default"] = "true" if d else "false"
    elif isinstance(d, (int, float)):
        col["default"] = str(d)
    else:
        col["default"] = "'" + str(d).replace("'", "''") + "'"
    if col.get("required"):
        col["fill"] = d


def array_literal(values: list) -> str:
    """A PostgreSQL array literal as the server prints it back (so the schema check finds it equal): an
    element quoted only when it must be (empty, NULL, a delimiter, a quote, a backslash or white space)."""
    def element(v) -> str:
        text = str(v).lower() if isinstance(v, bool) else str(v)
        if text == "" or text.upper() == "NULL" or any(ch in text for ch in '{},"\\ \t\n\r\f\v'):
            return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return text
    return "{" + ",".join(element(v) for v in values) + "}"


def _client_attributes(s: PrismaSchema, f: dict) -> str:
    """The attributes Prisma Client acts on that no column default says: `@updatedAt` (the client sets it on
    every write) and `@default(uuid())`/`cuid()`/`nanoid()`/`ulid()` on a field that is no @id (the client
    makes the value; on a String @id as well), and a scalar list's default (Prisma writes it, in the schema's own form)."""
    out = []
    if f.get("isUpdatedAt"):
        out.append("@updatedAt")
    d = f.get("default")
    if isinstance(d, dict) and d.get("name") in ("uuid", "cuid", "nanoid", "ulid"):  # a String @id's too
        args = [a for a in d.get("args") or [] if (d["name"], a) not in (("uuid", 4), ("cuid", 1))]  # the defaults
        out.append(f"@default({d['name']}({', '.join(str(a) for a in args)}))")
    elif isinstance(d, list):
        # an enum list is a text[] of the stored values (the mapping's rule), so its default is too
        stored = s.stored(f["type"]) if f["kind"] == "enum" else {}
        out.append("@default([" + ", ".join(json.dumps(stored.get(v, v)) for v in d) + "])")
    return " ".join(out)
