"""The PostgreSQL-era schema.prisma of a mapping: what the application's team starts from after the
migration, matching the migrated database exactly (tables, columns and their types, nullability,
primary keys, foreign keys with their actions and names, indexes and their names, enums).

- a table -> a model (the application's model name when the mapping has it, `@@map` to the table);
- uuid -> `String @db.Uuid`; a primary key gets `@default(uuid())`, made by Prisma Client, so the
  database keeps no default of its own (as migrated); timestamp -> `DateTime @db.Timestamp(3)`;
  jsonb -> `Json @db.JsonB`; arrays -> lists; enums -> enums;
- a foreign key -> a named relation both ways (the application's field names when the mapping has
  them), with its onDelete/onUpdate and `map:` the constraint's name;
- a junction -> an explicit model with a composite `@@id`, a relation to each side and its indexes;
  each side's model lists the junction rows (the application reads `include: {x: {include: {y: true}}}`
  where it read `include: {x: true}` on MongoDB);
- defaults: `now()`, literals; indexes: `@@index`/`@@unique` with `map:` their names.
"""

from __future__ import annotations

import re

from ..mapping import Column, Junction, Mapping, Table
from .presets import singular_snake
from .shapes import ACTIONS as PRISMA_ACTIONS

TYPES = {"uuid": ("String", "@db.Uuid"), "text": ("String", ""), "integer": ("Int", ""), "bigint": ("BigInt", ""),
         "double": ("Float", ""), "boolean": ("Boolean", ""), "timestamp": ("DateTime", "@db.Timestamp(3)"),
         "jsonb": ("Json", "@db.JsonB"), "text[]": ("String[]", ""), "uuid[]": ("String[]", "@db.Uuid"),
         "integer[]": ("Int[]", ""), "bytea": ("Bytes", "")}
ACTIONS = {sql_action: prisma for prisma, sql_action in PRISMA_ACTIONS.items()}
_IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def _ident(name: str, prefix: str) -> str:
    """A valid Prisma identifier for a database name (which @map/@@map then keeps)."""
    cleaned = re.sub(r"[^A-Za-z0-9_]", "_", name).lstrip("_")
    return cleaned if _IDENT.match(cleaned) else f"{prefix}{cleaned}"


class _Model:
    """One model's lines, with field names kept unique."""

    def __init__(self, name: str, table: str):
        self.name, self.table = name, table
        self.fields: list[str] = []
        self.relations: list[str] = []
        self.blocks: list[str] = []
        self.taken: set[str] = set()

    def unique_name(self, wanted: str) -> str:
        name, n = wanted, 2
        while name in self.taken:
            name, n = f"{wanted}{n}", n + 1
        self.taken.add(name)
        return name

    def text(self) -> str:
        lines = [f"model {self.name} {{", *self.fields, *self.relations, *self.blocks]
        if self.name != self.table:
            lines.append(f'  @@map("{self.table}")')
        return "\n".join(lines) + "\n}\n"


def schema_prisma(mapping: Mapping) -> str:
    models = {t.name: _Model(_ident(t.prisma_dict().get("model", t.name), "M"), t.name)
              for t in mapping.tables.values()}
    models.update({j.name: _Model(_ident(j.prisma_dict().get("model", j.name), "M"), j.name)
                   for j in mapping.junctions.values() if not _implicit(j)})
    field_of: dict[tuple[str, str], str] = {}  # (table, column) -> its Prisma field name
    fks = {(fk["table"], fk["columns"][0]): fk for fk in mapping.foreign_keys()}
    for t in mapping.tables.values():
        for c in t.columns:
            field_of[(t.name, c.name)] = models[t.name].unique_name(
                _ident(c.prisma_dict().get("field", c.name), "f"))
    for t in mapping.tables.values():
        for c in t.columns:
            models[t.name].fields.append(_scalar(mapping, t, c, field_of[(t.name, c.name)]))
        for idx in t.indexes:
            fields = ", ".join(field_of[(t.name, col)] for col in idx.columns)
            models[t.name].blocks.append(f'  @@{"unique" if idx.unique else "index"}([{fields}], map: "{idx.name}")')
    for t in mapping.tables.values():
        for c in t.columns:
            if c.references:
                _relation(mapping, models, field_of, fks[(t.name, c.name)], t, c)
    for j in mapping.junctions.values():
        _junction(mapping, models, field_of, fks, j)
    enums = "".join(f"enum {name} {{\n" + "".join(_enum_value(mapping, name, v) for v in values) + "}\n\n"
                    for name, values in mapping.enums.items())
    head = (f"// The PostgreSQL-era schema of {mapping.name}, written by `mongo2pg schema prisma` from its mapping: it\n"
            "// matches the migrated database exactly. The connection URL lives in prisma.config.ts (Prisma 7).\n\n"
            'generator client {\n  provider = "prisma-client-js"\n}\n\n'
            'datasource db {\n  provider = "postgresql"\n}\n\n')
    return head + enums + "\n".join(m.text() for m in models.values())


def _enum_value(mapping: Mapping, enum: str, stored: str) -> str:
    """An enum value under the application's Prisma name, `@map`ped to the stored one where they differ."""
    name = mapping.prisma_enums.get(enum, {}).get(stored)
    return f'  {name} @map("{stored}")\n' if name else f"  {stored}\n"


def _scalar(mapping: Mapping, t: Table, c: Column, name: str) -> str:
    ptype, native = (c.enum, "") if c.type == "enum" else TYPES[c.type]
    if not c.not_null and not ptype.endswith("[]"):
        ptype += "?"
    attrs = []
    kept = c.prisma_dict().get("attributes", "")
    if c.primary_key:
        # a UUID id: made by Prisma Client, as ObjectIds were; a string id: by the client default it had
        attrs.append("@id" if "@default(" in kept or c.type == "text" else "@id @default(uuid())")
    default = _default(mapping, c)
    if default and "@default(" not in kept:
        attrs.append(f"@default({default})")
    if kept:
        attrs.append(kept)
    if name != c.name:
        attrs.append(f'@map("{c.name}")')
    if native:
        attrs.append(native)
    return f"  {name} {ptype} {' '.join(attrs)}".rstrip()


def _default(mapping: Mapping, c: Column) -> str | None:
    d = c.default
    if d is None or c.type.endswith("[]"):
        return None  # a list's default is written by from-prisma in Prisma's own form (prisma: attributes)
    if d == "CURRENT_TIMESTAMP":
        return "now()"
    if d.startswith("'"):
        value = d[1:-1].replace("''", "'")
        if c.type == "enum":
            return mapping.prisma_enums.get(c.enum, {}).get(value, value)
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return d


def _relation(mapping: Mapping, models: dict[str, _Model], field_of, fk: dict, t: Table, c: Column) -> None:
    names = c.prisma_dict()
    owner, target = models[t.name], models[c.references]
    relation = names.get("relation") or f"{t.name}_{c.name}"
    base = c.name[:-3] if c.name.endswith("_id") else c.name[:-2] if c.name.endswith("Id") else f"{c.name}_rel"
    here = owner.unique_name(names.get("relation_field") or _ident(base, "r"))
    back = target.unique_name(names.get("back_field") or _ident(f"{t.name}_{c.name}", "r"))
    ref = field_of[(c.references, mapping.tables[c.references].pk.name)]
    owner.relations.append(
        f'  {here} {target.name}{"" if c.not_null else "?"} @relation("{relation}", fields: [{field_of[(t.name, c.name)]}], '
        f'references: [{ref}], onDelete: {ACTIONS[fk["on_delete"]]}, onUpdate: {ACTIONS[fk["on_update"]]}, '
        f'map: "{fk["name"]}")')
    target.relations.append(f'  {back} {owner.name}[] @relation("{relation}")')


def _implicit(j: Junction) -> bool:
    """An implicit m:n the schema can say as two list fields: Prisma's table layout, both fields named."""
    names = j.prisma_dict()
    return j.implicit and j.name == "_" + names.get("relation", "") and "left_field" in names and "right_field" in names


def _junction(mapping: Mapping, models: dict[str, _Model], field_of, fks: dict, j: Junction) -> None:
    names = j.prisma_dict()
    if _implicit(j):  # each side lists the other's rows, as the MongoDB-era schema did
        left, right = models[j.left.references], models[j.right.references]
        here, there = left.unique_name(names["left_field"]), right.unique_name(names["right_field"])
        left.relations.append(f'  {here} {right.name}[] @relation("{names["relation"]}")')
        right.relations.append(f'  {there} {left.name}[] @relation("{names["relation"]}")')
        return
    model = models[j.name]
    cols = []
    for side in (j.left, j.right):
        col = model.unique_name(_ident(side.column, "f"))
        cols.append(col)
        mapped = "" if col == side.column else f'@map("{side.column}") '
        model.fields.append(f"  {col} String {mapped}@db.Uuid")
    for side, key, col in ((j.left, "left_field", cols[0]), (j.right, "right_field", cols[1])):
        target = models[side.references]
        relation = f"{j.name}_{side.column}"
        wanted = side.column[:-3] if side.column.endswith("_id") else singular_snake(side.references)
        here = model.unique_name(_ident(wanted, "r"))
        # Each side's model lists the junction rows under the application's name for the m:n field.
        back = target.unique_name(names.get(key) or _ident(j.name, "r"))
        fk = fks[(j.name, side.column)]
        ref = field_of[(side.references, mapping.tables[side.references].pk.name)]
        model.relations.append(f'  {here} {target.name} @relation("{relation}", fields: [{col}], references: [{ref}], '
                               f'onDelete: {ACTIONS[fk["on_delete"]]}, onUpdate: {ACTIONS[fk["on_update"]]}, '
                               f'map: "{fk["name"]}")')
        target.relations.append(f'  {back} {model.name}[] @relation("{relation}")')
    model.blocks.append(f'  @@id([{cols[0]}, {cols[1]}], map: "{j.name}_pkey")')
    by_column = {j.left.column: cols[0], j.right.column: cols[1]}
    for idx in j.indexes:
        fields = ", ".join(by_column[c] for c in idx.columns)
        model.blocks.append(f'  @@{"unique" if idx.unique else "index"}([{fields}], map: "{idx.name}")')
