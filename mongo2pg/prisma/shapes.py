"""What from-prisma reads a schema's DMMF with: Prisma's scalar types and referential actions in the
mapping's terms, the refusal it raises, and the schema's models and enums by name."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigError
from .presets import Naming

SCALARS = {"String": "text", "Int": "integer", "BigInt": "bigint", "Float": "double", "Boolean": "boolean",
           "DateTime": "timestamp", "Json": "jsonb", "Bytes": "bytea"}
LISTS = {"String": "text[]", "Int": "integer[]"}
ACTIONS = {"Cascade": "CASCADE", "SetNull": "SET NULL", "Restrict": "RESTRICT", "NoAction": "NO ACTION",
           "SetDefault": "SET DEFAULT"}


class UnsupportedPrisma(ConfigError):
    """A construct of the schema the mapping cannot express (named, with what to do)."""


def object_id(f: dict) -> bool:
    return bool(f.get("nativeType")) and f["nativeType"][0] == "ObjectId"


def db_name(f: dict) -> str:
    return f.get("dbName") or f["name"]


@dataclass
class M2nSide:
    model: dict
    relation_field: dict  # the list relation field on this model
    array: dict | None  # the ObjectId array it reads (None: the other side holds the links)


@dataclass
class PrismaSchema:
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

    def string_ids(self, model_name: str) -> bool:
        """The model's @id is a String kept as it is (`@default(cuid())`, `uuid()`, ...), not an ObjectId."""
        return not any(object_id(f) for f in self.models[model_name]["fields"] if f.get("isId"))

    def stored(self, enum_name: str) -> dict[str, str]:
        """An enum's Prisma value names -> the values stored (`@map`ped, else the names)."""
        return {v["name"]: v.get("dbName") or v["name"] for v in self.enums[enum_name]["values"]}
