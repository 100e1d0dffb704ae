"""The mapping's model: what a loaded, validated mapping holds (columns, indexes, tables, junctions, the
mapping with its foreign keys and indexes), and the vocabulary parse.py checks a mapping against."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BUILTIN_DIR = Path(__file__).resolve().parent.parent / "mappings"

SCALAR_TYPES = {"uuid", "text", "integer", "bigint", "double", "boolean", "timestamp", "jsonb", "enum", "bytea"}
ARRAY_TYPES = {"text[]", "uuid[]", "integer[]"}
ALL_TYPES = SCALAR_TYPES | ARRAY_TYPES
# A table's id: `uuid` from an ObjectId _id (ids.py's reversible rule), or `text`, a string _id kept as it is
# (Prisma's `String @id @default(cuid())`). A reference column has the type of the id it references.
ID_TYPES = ("uuid", "text")
DANGLING_POLICIES = {"null", "reject", "keep"}
FK_ACTIONS = {"CASCADE", "SET NULL", "RESTRICT", "NO ACTION", "SET DEFAULT"}
COLUMN_KEYS = {"name", "source", "type", "enum", "primary_key", "required", "default", "fill",
               "references", "on_delete", "on_update", "on_dangling", "stored_as", "prisma"}
TABLE_KEYS = {"collection", "columns", "indexes", "drop", "prisma"}
JUNCTION_KEYS = {"left", "right", "sources", "indexes", "prisma"}
# `prisma:` holds the application's Prisma names where they differ from the database's (model, field,
# relation and relation-field names), for `mongo2pg schema prisma`; the engine ignores it.
# `attributes`: a field's Prisma attributes the application relies on and the database does not hold
# (`@updatedAt`, `@default(cuid())`, ...), written as they are into the PostgreSQL-era schema.
PRISMA_KEYS = {"model", "field", "relation", "relation_field", "back_field", "left_field", "right_field",
               "attributes"}


@dataclass(frozen=True)
class Column:
    name: str
    source: str
    type: str
    enum: str | None = None
    primary_key: bool = False
    required: bool = False
    default: str | None = None  # SQL default in the DDL
    fill: Any = None  # value used when the source value is missing; "objectid_time" is special
    references: str | None = None
    on_delete: str = "SET NULL"
    on_update: str = "CASCADE"
    on_dangling: str = "null"
    # "hex": the documents hold this uuid column's ObjectIds as their 24 hex digits (a relation scalar the
    # schema declares a plain String); reverse sync writes them back so.
    stored_as: str | None = None
    prisma: tuple[tuple[str, str], ...] = ()  # the application's Prisma names (PRISMA_KEYS), as pairs

    def prisma_dict(self) -> dict[str, str]:
        return dict(self.prisma)

    @property
    def not_null(self) -> bool:
        return self.primary_key or self.required


@dataclass(frozen=True)
class Index:
    name: str
    columns: tuple[str, ...]
    unique: bool = False
    # A unique index's duplicates in the source: "reject" every document but the one with the smallest _id,
    # or "fail": stop before loading and list them.
    on_duplicate: str = "reject"


@dataclass(frozen=True)
class Table:
    name: str
    collection: str
    columns: tuple[Column, ...]
    indexes: tuple[Index, ...] = ()
    drop: tuple[str, ...] = ()
    prisma: tuple[tuple[str, str], ...] = ()

    def prisma_dict(self) -> dict[str, str]:
        return dict(self.prisma)

    @property
    def pk(self) -> Column:
        return next(c for c in self.columns if c.primary_key)

    @property
    def text_id(self) -> bool:
        """The _id is a string kept as it is (else an ObjectId, its row id the UUID ids.py derives)."""
        return self.pk.type == "text"

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


@dataclass(frozen=True)
class JunctionSide:
    column: str
    references: str


@dataclass(frozen=True)
class JunctionSource:
    collection: str
    field: str
    holds: str  # "left" or "right": which side's ids the array holds; the document is the other side


@dataclass(frozen=True)
class Junction:
    name: str
    left: JunctionSide
    right: JunctionSide
    sources: tuple[JunctionSource, ...]
    indexes: tuple[Index, ...] = ()
    prisma: tuple[tuple[str, str], ...] = ()

    def prisma_dict(self) -> dict[str, str]:
        return dict(self.prisma)

    def side(self, which: str) -> JunctionSide:
        return self.left if which == "left" else self.right

    @property
    def implicit(self) -> bool:
        """Laid out as Prisma's implicit m:n relation table (`_<relation>`, columns A and B), which a Prisma
        schema on PostgreSQL reads through the two models' list fields, with no model of its own."""
        return self.name.startswith("_") and (self.left.column, self.right.column) == ("A", "B")

    @property
    def pkey(self) -> str:
        return f"{self.name}_AB_pkey" if self.implicit else f"{self.name}_pkey"  # Prisma's name, where implicit


@dataclass
class Mapping:
    name: str
    path: str
    enums: dict[str, tuple[str, ...]]
    tables: dict[str, Table]  # in load order (parents first)
    junctions: dict[str, Junction]
    digest: str = ""
    by_collection: dict[str, Table] = field(default_factory=dict)
    # The application's Prisma names of enum values where they differ from the stored ones (`@map`):
    # enum -> {stored value: Prisma name}. The engine ignores it; `schema prisma` reads it.
    prisma_enums: dict[str, dict[str, str]] = field(default_factory=dict)

    def junction_sources(self, collection: str) -> list[tuple[Junction, JunctionSource]]:
        return [(j, s) for j in self.junctions.values() for s in j.sources if s.collection == collection]

    def foreign_keys(self) -> list[dict[str, Any]]:
        """Every FK in the reference schema's shape (entity references, then junction sides)."""
        out = []
        for t in self.tables.values():
            for c in t.columns:
                if c.references:
                    out.append({"table": t.name, "name": f"{t.name}_{c.name}_fkey", "columns": [c.name],
                                "references": c.references, "ref_columns": [self.tables[c.references].pk.name],
                                "on_delete": c.on_delete, "on_update": c.on_update})
        for j in self.junctions.values():
            for side in (j.left, j.right):
                out.append({"table": j.name, "name": f"{j.name}_{side.column}_fkey", "columns": [side.column],
                            "references": side.references,
                            "ref_columns": [self.tables[side.references].pk.name],
                            "on_delete": "CASCADE", "on_update": "CASCADE"})
        return out

    def indexes(self) -> list[tuple[str, Index]]:
        out = [(t.name, i) for t in self.tables.values() for i in t.indexes]
        out += [(j.name, i) for j in self.junctions.values() for i in j.indexes]
        return out
