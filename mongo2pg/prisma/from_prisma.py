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

import json
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..errors import ConfigError, MappingError
from ..mapping import Mapping, parse_mapping
from .presets import Naming

SCALARS = {"String": "text", "Int": "integer", "BigInt": "bigint", "Float": "double", "Boolean": "boolean",
           "DateTime": "timestamp", "Json": "jsonb", "Bytes": "bytea"}
LISTS = {"String": "text[]", "Int": "integer[]"}
ACTIONS = {"Cascade": "CASCADE", "SetNull": "SET NULL", "Restrict": "RESTRICT", "NoAction": "NO ACTION",
           "SetDefault": "SET DEFAULT"}


class UnsupportedPrisma(ConfigError):
    """A construct of the schema the mapping cannot express (named, with what to do)."""


def _object_id(f: dict) -> bool:
    return bool(f.get("nativeType")) and f["nativeType"][0] == "ObjectId"


def _db(f: dict) -> str:
    return f.get("dbName") or f["name"]


@dataclass
class _Side:
    model: dict
    relation_field: dict  # the list relation field on this model
    array: dict | None  # the ObjectId array it reads (None: the other side holds the links)


@dataclass
class _Schema:
    dmmf: dict
    naming: Naming
    models: dict[str, dict] = field(init=False)
    enums: dict[str, dict] = field(init=False)
    composite: set[str] = field(init=False)

    def __post_init__(self):
        dm = self.dmmf["datamodel"]
        self.models = {m["name"]: m for m in dm["models"]}
        self.enums = {e["name"]: e for e in dm["enums"]}
        self.composite = {t["name"] for t in dm.get("types", [])}

    def table(self, model_name: str) -> str:
        return self.models[model_name].get("dbName") or model_name


def mapping_from_dmmf(dmmf: dict[str, Any], naming: Naming, name: str = "app") -> dict[str, Any]:
    """The mapping (as the dict its YAML holds) for the schema's DMMF."""
    s = _Schema(dmmf, naming)
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


def _m2n_sides(s: _Schema) -> dict[str, list[_Side]]:
    """Relation name -> its m:n sides: every list relation field, and every relation reading an ObjectId array
    (with that array). A group with no array is a 1:n back-relation, not an m:n."""
    by_relation: dict[str, list[_Side]] = {}
    for m in s.models.values():
        fields = {g["name"]: g for g in m["fields"]}
        for f in m["fields"]:
            if f["kind"] != "object" or f["type"] in s.composite:
                continue
            arrays = f.get("relationFromFields") or []
            array = fields[arrays[0]] if arrays and fields[arrays[0]]["isList"] else None
            if f["isList"] or array is not None:
                by_relation.setdefault(f["relationName"], []).append(_Side(m, f, array))
    return {r: group for r, group in by_relation.items() if any(x.array is not None for x in group)}


def _table(s: _Schema, model: dict, junction_arrays: set[tuple[str, str]]) -> dict[str, Any]:
    table = s.table(model["name"])
    refs = _relations_by_scalar(model)
    columns, names = [], {}
    for f in model["fields"]:
        if f["kind"] == "object" and f["type"] not in s.composite:
            continue  # a relation field: no column (its scalar is one)
        if (model["name"], f["name"]) in junction_arrays:
            continue  # m:n links: a junction table
        col = _column(s, model, f, refs.get(f["name"]))
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


def _column(s: _Schema, model: dict, f: dict, relation: dict | None) -> dict[str, Any]:
    where = f"{model['name']}.{f['name']}"
    db = _db(f)
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
    elif _object_id(f) or (relation is not None and _object_id(_referenced_id(s, where, relation))):
        # A relation's scalar holds the referenced @id: an ObjectId, or its 24 hex digits where the schema
        # declares a plain String (the Auth.js adapter's `userId String`); either converts to the same UUID,
        # and any other value is a reject naming the field.
        col["type"] = "uuid[]" if f["isList"] else "uuid"
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
        if col["type"] != "uuid":
            raise UnsupportedPrisma(f"{where}: an @id that is not an ObjectId ({f['type']}) is not supported yet: "
                                    "the reversible UUID scheme needs ObjectIds")
    elif f["isRequired"] and not f["isList"]:
        col["required"] = True
    _default(s, col, f)
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


def check_mapping(mapping: dict[str, Any], text: str) -> Mapping:
    """The written mapping as the engine reads it; a refusal is told in the schema's terms (the model and
    field it came from), never as a line of a YAML file the user did not write."""
    try:
        return parse_mapping(text, "<from-prisma>")
    except MappingError as exc:
        raise UnsupportedPrisma(f"{_prisma_place(mapping, exc.where)}: {exc.reason}: a shape from-prisma does not "
                                "map yet. Fix: map this field by hand in a mapping (docs/prisma.md, 'Writing a "
                                "mapping by hand')") from None


def _prisma_place(mapping: dict[str, Any], where: tuple) -> str:
    """`Model.field` (or the junction's relation) for a key path of the mapping."""
    if len(where) >= 2 and where[0] == "tables" and where[1] in mapping["tables"]:
        t = mapping["tables"][where[1]]
        model = t.get("prisma", {}).get("model", where[1])
        if len(where) >= 4 and where[2] == "columns" and isinstance(where[3], int) and where[3] < len(t["columns"]):
            c = t["columns"][where[3]]
            return f"{model}.{c.get('prisma', {}).get('field', c.get('source', c['name']))}"
        return f"model {model}"
    if len(where) >= 2 and where[0] == "junctions" and where[1] in mapping.get("junctions", {}):
        return f"relation {mapping['junctions'][where[1]].get('prisma', {}).get('relation', where[1])}"
    return "the schema"


def _referenced_id(s: _Schema, where: str, relation: dict) -> dict:
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


def _default(s: _Schema, col: dict[str, Any], f: dict) -> None:
    d = f.get("default")
    if d is None or f.get("isId"):
        return
    if isinstance(d, dict):
        if d.get("name") == "now":
            col["default"] = "CURRENT_TIMESTAMP"
            if col.get("required"):
                col["fill"] = "objectid_time"
        return  # auto(), uuid(), cuid(), dbgenerated(): nothing a document lacks can take
    if f["kind"] == "enum":
        stored = {v["name"]: v.get("dbName") or v["name"] for v in s.enums[f["type"]]["values"]}
        d = [stored.get(v, v) for v in d] if isinstance(d, list) else stored.get(d, d)
    if isinstance(d, list):
        # a scalar list's default: the column's too (an array literal); an absent list is left NULL
        col["default"] = "'" + _array_literal(d).replace("'", "''") + "'"
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


def _array_literal(values: list) -> str:
    """A PostgreSQL array literal as the server prints it back (so the schema check finds it equal): an
    element quoted only when it must be (empty, NULL, a delimiter, a quote, a backslash or white space)."""
    def element(v) -> str:
        text = str(v).lower() if isinstance(v, bool) else str(v)
        if text == "" or text.upper() == "NULL" or any(ch in text for ch in '{},"\\ \t\n\r\f\v'):
            return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return text
    return "{" + ",".join(element(v) for v in values) + "}"


def _client_attributes(s: _Schema, f: dict) -> str:
    """The attributes Prisma Client acts on that no column default says: `@updatedAt` (the client sets it on
    every write) and `@default(uuid())`/`cuid()`/`nanoid()`/`ulid()` on a field that is no @id (the client
    makes the value), and a scalar list's default (Prisma writes it, in the schema's own form)."""
    out = []
    if f.get("isUpdatedAt"):
        out.append("@updatedAt")
    d = f.get("default")
    if not f.get("isId") and isinstance(d, dict) and d.get("name") in ("uuid", "cuid", "nanoid", "ulid"):
        args = [a for a in d.get("args") or [] if (d["name"], a) not in (("uuid", 4), ("cuid", 1))]  # the defaults
        out.append(f"@default({d['name']}({', '.join(str(a) for a in args)}))")
    elif isinstance(d, list):
        # an enum list is a text[] of the stored values (the mapping's rule), so its default is too
        stored = {v["name"]: v.get("dbName") or v["name"] for v in s.enums[f["type"]]["values"]} \
            if f["kind"] == "enum" else {}
        out.append("@default([" + ", ".join(json.dumps(stored.get(v, v)) for v in d) + "])")
    return " ".join(out)


def _indexes(s: _Schema, model: dict, names: dict[str, str], columns: list[dict]) -> list[dict[str, Any]]:
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


def _junctions(s: _Schema, m2n: dict[str, list[_Side]]) -> dict[str, Any]:
    """Every m:n relation: its two sides, each reading the array it holds (if it holds one)."""
    out: dict[str, Any] = {}
    for relation, sides in m2n.items():
        if len(sides) == 1:  # one-sided: the other side has no relation field
            sides = [sides[0], _Side(s.models[sides[0].relation_field["type"]], {}, None)]
        if len(sides) != 2:
            raise UnsupportedPrisma(f"relation {relation}: {len(sides)} list fields name it ("
                                    f"{', '.join(x.model['name'] + '.' + x.relation_field['name'] for x in sides)}), "
                                    "expected 2. Fix: give each m:n relation its own @relation name")
        tables = [s.table(x.model["name"]) for x in sides]
        name, (left_col, right_col), order = s.naming.junction(relation, tables)
        left, right = (sides if order == tuple(tables) else sides[::-1])
        lt, rt = s.table(left.model["name"]), s.table(right.model["name"])
        entry: dict[str, Any] = {"left": {"column": left_col, "references": lt},
                                 "right": {"column": right_col, "references": rt}, "sources": []}
        for side, holds in ((left, "right"), (right, "left")):
            if side.array is not None:
                entry["sources"].append({"collection": s.table(side.model["name"]), "field": _db(side.array),
                                         "holds": holds})
        if s.naming.index_junction_columns:
            entry["indexes"] = [{"name": s.naming.index_name(name, (c,), False), "columns": [c]}
                                for c in (left_col, right_col)]
        prisma = {"relation": relation}
        for side, key in ((left, "left_field"), (right, "right_field")):
            if side.relation_field:
                prisma[key] = side.relation_field["name"]
        entry["prisma"] = prisma
        out[name] = entry
    return out


class _FlowDumper(yaml.SafeDumper):
    """Block style for the structure, one line per column, index and source (as nextcrm.yml reads)."""


def _flow_items(dumper, data):
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=True)


class _Flow(dict):
    pass


_FlowDumper.add_representer(_Flow, _flow_items)


def mapping_yaml(mapping: dict[str, Any], header: str) -> str:
    """The mapping as YAML: columns, indexes, sides and sources one per line."""
    def flow(d: dict) -> _Flow:
        return _Flow({k: (_Flow(v) if isinstance(v, dict) else v) for k, v in d.items()})

    out = dict(mapping)
    if "enums" in mapping:
        out["enums"] = {k: _FlowList(v) for k, v in mapping["enums"].items()}
    tables = {}
    for tname, t in mapping["tables"].items():
        tables[tname] = {k: ([flow(c) for c in v] if k in ("columns", "indexes") else
                             flow(v) if k == "prisma" else v) for k, v in t.items()}
    out["tables"] = tables
    if "junctions" in mapping:
        out["junctions"] = {
            j: {k: (flow(v) if k in ("left", "right", "prisma") else [flow(x) for x in v]) for k, v in jd.items()}
            for j, jd in mapping["junctions"].items()}
    text = yaml.dump(out, Dumper=_FlowDumper, sort_keys=False, allow_unicode=True, width=120)
    return "".join(f"# {line}\n" for line in header.splitlines()) + text


class _FlowList(list):
    pass


_FlowDumper.add_representer(_FlowList, lambda d, data: d.represent_sequence("tag:yaml.org,2002:seq", data,
                                                                             flow_style=True))
