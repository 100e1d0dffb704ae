"""A mapping from a MongoDB-era schema.prisma, read through Prisma's DMMF (dmmf.py).

- a model -> a table named as its collection (`@@map`, else the model name);
- `@id @default(auto()) @map("_id") @db.ObjectId` -> a UUID primary key (ids.py's reversible scheme);
  any other `@db.ObjectId` -> uuid, with a foreign key when a relation's `fields` name it (its
  `onDelete`/`onUpdate`, else Prisma's defaults: SetNull when optional, Restrict when required);
- a dangling reference: NULL when the relation is optional, the record rejected when it is required;
- m:n (`String[] @db.ObjectId` arrays under a list relation, on one side or both) -> a junction table
  read from every side that holds an array;
- scalars: String text, Int integer, BigInt bigint, Float double, Boolean boolean, DateTime
  timestamp, Json jsonb, enums as enums; lists: String[] text[], Int[] integer[], ObjectId[] uuid[],
  others jsonb; composite types (`type X {}`) jsonb;
- `@default(now())` -> DEFAULT CURRENT_TIMESTAMP and, when required, the ObjectId's creation time where a
  document lacks the field; other literal defaults -> the DEFAULT and, when required, that value;
- `@unique`, `@@unique`, `@@index` -> indexes; `@map` names kept (the Prisma names go under `prisma:`,
  which the engine ignores and `mongo2pg schema prisma` reads).

Names of what MongoDB never had (junction tables and their columns, indexes, foreign keys) follow a
Naming (presets.py): Prisma's own conventions by default, NextCRM's choices as a preset.
"""

from __future__ import annotations

from typing import Any

from .columns import column
from .presets import Naming
from .shapes import M2nSide, PrismaSchema, UnsupportedPrisma, db_name


def mapping_from_dmmf(dmmf: dict[str, Any], naming: Naming, name: str = "app") -> dict[str, Any]:
    """The mapping (as the dict its YAML holds) for the schema's DMMF."""
    s = PrismaSchema(dmmf, naming)
    dm = dmmf["datamodel"]
    enums = {e["name"]: [v.get("dbName") or v["name"] for v in e["values"]] for e in dm["enums"]}
    # values the schema @maps: stored value -> the Prisma name the application's code uses
    prisma_enums = {e["name"]: {v["dbName"]: v["name"] for v in e["values"] if v.get("dbName")}
                    for e in dm["enums"]}
    prisma_enums = {k: v for k, v in prisma_enums.items() if v}
    sides = _m2n_sides(s)
    junction_arrays = {(x.model["name"], x.array["name"]) for group in sides.values() for x in group if x.array}
    tables: dict[str, Any] = {}
    for model in dm["models"]:
        tables[s.table(model["name"])] = _table(s, model, junction_arrays)
    junctions = _junctions(s, sides)
    out: dict[str, Any] = {"version": 1, "name": name}
    if enums:
        out["enums"] = enums
    out["tables"] = tables
    if junctions:
        out["junctions"] = junctions
    if prisma_enums:
        out["prisma_enums"] = prisma_enums
    return out


def _relations_by_scalar(model: dict) -> dict[str, dict]:
    """Scalar field name -> the to-one relation field whose `fields` it is (a single, non-list scalar)."""
    out = {}
    lists = {f["name"] for f in model["fields"] if f["isList"]}
    for f in model["fields"]:
        from_fields = f.get("relationFromFields") or []
        if f["kind"] == "object" and not f["isList"] and len(from_fields) == 1 and from_fields[0] not in lists:
            out[from_fields[0]] = f
    return out


def _m2n_sides(s: PrismaSchema) -> dict[str, list[M2nSide]]:
    """Relation name -> its m:n sides: every list relation field, and every relation reading an ObjectId array
    (with that array). A group with no array is a 1:n back-relation, not an m:n."""
    by_relation: dict[str, list[M2nSide]] = {}
    for m in s.models.values():
        fields = {g["name"]: g for g in m["fields"]}
        for f in m["fields"]:
            if f["kind"] != "object" or f["type"] in s.composite:
                continue
            arrays = f.get("relationFromFields") or []
            array = fields[arrays[0]] if arrays and fields[arrays[0]]["isList"] else None
            if f["isList"] or array is not None:
                by_relation.setdefault(f["relationName"], []).append(M2nSide(m, f, array))
    return {r: group for r, group in by_relation.items() if any(x.array is not None for x in group)}


def _table(s: PrismaSchema, model: dict, junction_arrays: set[tuple[str, str]]) -> dict[str, Any]:
    table = s.table(model["name"])
    refs = _relations_by_scalar(model)
    columns, names = [], {}
    for f in model["fields"]:
        if f["kind"] == "object" and f["type"] not in s.composite:
            continue  # a relation field: no column (its scalar is one)
        if (model["name"], f["name"]) in junction_arrays:
            continue  # m:n links: a junction table
        col = column(s, model, f, refs.get(f["name"]))
        names[f["name"]] = col["name"]
        columns.append(col)
    out: dict[str, Any] = {"collection": table}
    if model.get("dbName") and model["dbName"] != model["name"]:
        out["prisma"] = {"model": model["name"]}
    out["columns"] = columns
    indexes = _indexes(s, model, names, columns)
    if indexes:
        out["indexes"] = indexes
    return out


def _indexes(s: PrismaSchema, model: dict, names: dict[str, str], columns: list[dict]) -> list[dict[str, Any]]:
    table = s.table(model["name"])
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, ...]] = set()
    for idx in s.dmmf["datamodel"].get("indexes", []):
        if idx["model"] != model["name"] or idx["type"] not in ("unique", "normal"):
            continue
        cols = tuple(names[p["name"]] for p in idx["fields"] if p["name"] in names)
        if len(cols) != len(idx["fields"]):
            continue  # over a relation array or a composite's inner field: not a column here
        unique = idx["type"] == "unique"
        name = idx.get("dbName") or s.naming.index_name(table, cols, unique)
        entry: dict[str, Any] = {"name": name, "columns": list(cols)}
        if unique:
            entry["unique"] = True
        out.append(entry)
        seen.add(cols)
    if s.naming.index_foreign_keys:
        for c in columns:
            if c.get("references") and (c["name"],) not in seen:
                out.append({"name": s.naming.index_name(table, (c["name"],), False), "columns": [c["name"]]})
                seen.add((c["name"],))
    return out


def _junctions(s: PrismaSchema, m2n: dict[str, list[M2nSide]]) -> dict[str, Any]:
    """Every m:n relation: its two sides, each reading the array it holds (if it holds one)."""
    out: dict[str, Any] = {}
    for relation, sides in m2n.items():
        if len(sides) == 1:  # one-sided: the other side has no relation field
            sides = [sides[0], M2nSide(s.models[sides[0].relation_field["type"]], {}, None)]
        if len(sides) != 2:
            raise UnsupportedPrisma(f"relation {relation}: {len(sides)} list fields name it ("
                                    f"{', '.join(x.model['name'] + '.' + x.relation_field['name'] for x in sides)}), "
                                    "expected 2. Fix: give each m:n relation its own @relation name")
        for x in sides:
            if s.string_ids(x.model["name"]):
                held = next(y for y in sides if y.relation_field)
                raise UnsupportedPrisma(
                    f"{held.model['name']}.{held.relation_field['name']}: the m:n relation {relation} links "
                    f"{x.model['name']}, whose @id is a String, not an ObjectId: a junction of string ids is not "
                    "supported yet. Fix: make the link an explicit model (one relation field to each side, "
                    "Prisma's explicit m:n), or give both models ObjectId ids")
        tables = [s.table(x.model["name"]) for x in sides]
        if s.naming.implicit_m2n:
            left, right = sorted(sides, key=lambda x: (x.model["name"], x.relation_field.get("name", "")))
            name, (left_col, right_col) = f"_{relation}", ("A", "B")
        else:
            name, (left_col, right_col), order = s.naming.junction(relation, tables)
            left, right = (sides if order == tuple(tables) else sides[::-1])
        lt, rt = s.table(left.model["name"]), s.table(right.model["name"])
        entry: dict[str, Any] = {"left": {"column": left_col, "references": lt},
                                 "right": {"column": right_col, "references": rt}, "sources": []}
        for side, holds in ((left, "right"), (right, "left")):
            if side.array is not None:
                entry["sources"].append({"collection": s.table(side.model["name"]), "field": db_name(side.array),
                                         "holds": holds})
        if s.naming.implicit_m2n:
            entry["indexes"] = [{"name": f"{name}_B_index", "columns": ["B"]}]
        elif s.naming.index_junction_columns:
            entry["indexes"] = [{"name": s.naming.index_name(name, (c,), False), "columns": [c]}
                                for c in (left_col, right_col)]
        prisma = {"relation": relation}
        for side, key in ((left, "left_field"), (right, "right_field")):
            if side.relation_field:
                prisma[key] = side.relation_field["name"]
        entry["prisma"] = prisma
        out[name] = entry
    return out
