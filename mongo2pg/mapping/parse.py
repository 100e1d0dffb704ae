"""The mapping spec loaded from YAML and validated on load: every error names the file, the line and the key
path. Table order comes from the foreign keys (topological sort)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import yaml

from ..errors import MappingError
from .model import (
    ALL_TYPES,
    BUILTIN_DIR,
    COLUMN_KEYS,
    DANGLING_POLICIES,
    FK_ACTIONS,
    ID_TYPES,
    JUNCTION_KEYS,
    PRISMA_KEYS,
    TABLE_KEYS,
    Column,
    Index,
    Junction,
    JunctionSide,
    JunctionSource,
    Mapping,
    Table,
)

# A column default is SQL text in the DDL: only these shapes are accepted, so a
# mapping cannot smuggle statements through it.
_SAFE_DEFAULT = re.compile(r"^(CURRENT_TIMESTAMP|true|false|-?\d+(\.\d+)?|'(?:[^']|'')*')$")
_MAX_IDENT_BYTES = 63  # PostgreSQL truncates longer names silently: two could collide.


def _line_index(node: yaml.Node, path: tuple = (), out: dict | None = None) -> dict[tuple, int]:
    """Map each key path in the YAML document to its 1-based line, for error messages."""
    out = {} if out is None else out
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = k.value
            out[path + (key,)] = k.start_mark.line + 1
            _line_index(v, path + (key,), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _line_index(v, path + (i,), out)
    return out


class _Checker:
    def __init__(self, path: str, lines: dict[tuple, int]):
        self.path, self.lines = path, lines

    def fail(self, where: tuple, message: str) -> MappingError:
        probe = where
        while probe and probe not in self.lines:
            probe = probe[:-1]
        line = self.lines.get(probe, 1)
        key = ".".join(str(p) for p in where) or "(top)"
        return MappingError(f"{self.path}:{line}: {key}: {message}", where, message)

    def ident(self, where: tuple, value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(where, f"must be a non-empty name, got {value!r}")
        if "\x00" in value:
            raise self.fail(where, "a name cannot contain a NUL byte")
        if len(value.encode()) > _MAX_IDENT_BYTES:
            raise self.fail(where, f"name {value!r} is longer than PostgreSQL's 63 bytes")
        return value

    def keys(self, where: tuple, obj: Any, allowed: set[str], required: set[str] = frozenset()) -> dict:
        if not isinstance(obj, dict):
            raise self.fail(where, f"must be a mapping, got {type(obj).__name__}")
        for k in obj:
            if k not in allowed:
                raise self.fail(where + (k,), f"unknown key (allowed: {', '.join(sorted(allowed))})")
        for k in required:
            if k not in obj:
                raise self.fail(where, f"missing required key {k!r}")
        return obj


def _prisma_enums(chk: _Checker, raw: Any, enums: dict[str, tuple[str, ...]]) -> dict[str, dict[str, str]]:
    """`prisma_enums`: enum -> {stored value: the application's Prisma name}, for values Prisma maps."""
    out: dict[str, dict[str, str]] = {}
    for ename, names in (raw or {}).items():
        where = ("prisma_enums", ename)
        if ename not in enums:
            raise chk.fail(where, f"no enum {ename!r} in enums")
        if not isinstance(names, dict) or not all(isinstance(k, str) and isinstance(v, str) and v
                                                  for k, v in names.items()):
            raise chk.fail(where, "must map stored values to Prisma names")
        unknown = set(names) - set(enums[ename])
        if unknown:
            raise chk.fail(where, f"values {sorted(unknown)} are not values of enum {ename}")
        out[ename] = dict(names)
    return out


def _parse_column(chk: _Checker, where: tuple, raw: Any, enums: dict) -> Column:
    raw = chk.keys(where, raw, COLUMN_KEYS, {"name", "type"})
    name = chk.ident(where + ("name",), raw["name"])
    ctype = raw["type"]
    if ctype not in ALL_TYPES:
        raise chk.fail(where + ("type",), f"unknown type {ctype!r} (one of: {', '.join(sorted(ALL_TYPES))})")
    enum = raw.get("enum")
    if ctype == "enum" and enum not in enums:
        raise chk.fail(where + ("enum",), f"enum {enum!r} is not declared under enums:")
    default = raw.get("default")
    if default is not None and not _SAFE_DEFAULT.match(str(default)):
        raise chk.fail(where + ("default",), f"default {default!r} must be a literal, a quoted string or CURRENT_TIMESTAMP")
    on_dangling = raw.get("on_dangling", "null")
    on_dangling = "null" if on_dangling is None else on_dangling
    if on_dangling not in DANGLING_POLICIES:
        raise chk.fail(where + ("on_dangling",), f"must be one of {sorted(DANGLING_POLICIES)}")
    for key in ("on_delete", "on_update"):
        if key in raw and raw[key] not in FK_ACTIONS:
            raise chk.fail(where + (key,), f"must be one of {sorted(FK_ACTIONS)}")
    refs = raw.get("references")
    if refs is not None:
        chk.ident(where + ("references",), refs)
        if ctype not in ID_TYPES:
            raise chk.fail(where + ("references",), "only uuid or text columns can reference a table "
                           "(the type of the referenced table's id)")
    stored_as = raw.get("stored_as")
    if stored_as is not None and (stored_as != "hex" or ctype != "uuid"):
        raise chk.fail(where + ("stored_as",), "only `hex` (ObjectIds held as 24 hex digits), on a uuid column")
    source = raw.get("source", name)
    if not isinstance(source, str) or not source:
        raise chk.fail(where + ("source",), "must be a field name")
    return Column(name=name, source=source, type=ctype, enum=enum, primary_key=bool(raw.get("primary_key", False)),
                  required=bool(raw.get("required", False)), default=None if default is None else str(default),
                  fill=raw.get("fill"), references=refs, on_delete=raw.get("on_delete", "SET NULL"),
                  on_update=raw.get("on_update", "CASCADE"), on_dangling=on_dangling, stored_as=stored_as,
                  prisma=_prisma_names(chk, where + ("prisma",), raw.get("prisma")))


def _prisma_names(chk: _Checker, where: tuple, raw: Any) -> tuple[tuple[str, str], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict) or not all(isinstance(v, str) and v for v in raw.values()):
        raise chk.fail(where, "must map Prisma name kinds to names")
    raw = chk.keys(where, raw, PRISMA_KEYS, set())
    return tuple(sorted(raw.items()))


ON_DUPLICATE = ("reject", "fail")


def _on_duplicate(chk: _Checker, where: tuple, value: Any) -> str:
    if value not in ON_DUPLICATE:
        raise chk.fail(where, f"must be one of {', '.join(ON_DUPLICATE)}")
    return value


def _parse_indexes(chk: _Checker, where: tuple, raw: Any, table: str, columns: set[str],
                   on_duplicate: str = "reject") -> tuple[Index, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise chk.fail(where, "must be a list")
    out = []
    for i, item in enumerate(raw):
        item = chk.keys(where + (i,), item, {"name", "columns", "unique", "on_duplicate"}, {"columns"})
        cols = item["columns"]
        if not isinstance(cols, list) or not cols:
            raise chk.fail(where + (i, "columns"), "must be a non-empty list")
        for c in cols:
            if c not in columns:
                raise chk.fail(where + (i, "columns"), f"column {c!r} is not a column of {table}")
        name = chk.ident(where + (i, "name"), item.get("name", f"{table}_{'_'.join(cols)}_idx"))
        out.append(Index(name=name, columns=tuple(cols), unique=bool(item.get("unique", False)),
                         on_duplicate=_on_duplicate(chk, where + (i, "on_duplicate"),
                                                    item.get("on_duplicate", on_duplicate))))
    return tuple(out)


def _topological(chk: _Checker, tables: dict[str, Table]) -> dict[str, Table]:
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(name: str, stack: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = " -> ".join(stack[stack.index(name):] + [name])
            raise chk.fail(("tables", name), f"foreign keys form a cycle: {cycle}")
        state[name] = 1
        for col in tables[name].columns:
            if col.references and col.references != name:
                visit(col.references, stack + [name])
        state[name] = 2
        order.append(name)

    for name in tables:
        visit(name, [])
    return {n: tables[n] for n in order}


def resolve_mapping_path(name_or_path: str) -> Path:
    candidate = Path(name_or_path)
    if candidate.suffix in (".yml", ".yaml") or candidate.exists():
        return candidate
    return BUILTIN_DIR / f"{name_or_path}.yml"


# libyaml's safe loader when PyYAML has it: parsing NextCRM's mapping took 0.7 s of every command in Python.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_mapping(name_or_path: str = "nextcrm") -> Mapping:
    """Load and validate a mapping: a built-in name (`nextcrm`) or a YAML file path."""
    path = resolve_mapping_path(name_or_path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise MappingError(f"{path}: mapping file not found (give a built-in name like 'nextcrm' or a .yml path)") from exc
    return parse_mapping(text, str(path))


def parse_mapping(text: str, path: str = "<mapping>") -> Mapping:
    try:
        node = yaml.compose(text, Loader=_YAML_LOADER)
        raw = yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506 - a safe loader (C or Python)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        raise MappingError(f"{path}:{line}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    chk = _Checker(path, _line_index(node) if node is not None else {})
    raw = chk.keys((), raw, {"version", "name", "enums", "tables", "junctions", "on_duplicate", "prisma_enums"},
                   {"tables"})
    on_duplicate = _on_duplicate(chk, ("on_duplicate",), raw.get("on_duplicate", "reject"))
    if raw.get("version", 1) != 1:
        raise chk.fail(("version",), "only version 1 is understood")
    enums: dict[str, tuple[str, ...]] = {}
    for ename, values in (raw.get("enums") or {}).items():
        chk.ident(("enums", ename), ename)
        if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
            raise chk.fail(("enums", ename), "must be a non-empty list of strings")
        enums[ename] = tuple(values)
    prisma_enums = _prisma_enums(chk, raw.get("prisma_enums"), enums)

    tables: dict[str, Table] = {}
    raw_tables = raw["tables"]
    if not isinstance(raw_tables, dict) or not raw_tables:
        raise chk.fail(("tables",), "must map table names to table definitions")
    for tname, tdef in raw_tables.items():
        where = ("tables", tname)
        chk.ident(where, tname)
        tdef = chk.keys(where, tdef, TABLE_KEYS, {"columns"})
        if not isinstance(tdef["columns"], list) or not tdef["columns"]:
            raise chk.fail(where + ("columns",), "must be a non-empty list")
        cols = tuple(_parse_column(chk, where + ("columns", i), c, enums) for i, c in enumerate(tdef["columns"]))
        names = [c.name for c in cols]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise chk.fail(where + ("columns",), f"duplicate column names: {sorted(dupes)}")
        pks = [c for c in cols if c.primary_key]
        if len(pks) != 1 or pks[0].type not in ID_TYPES or pks[0].source != "_id":
            raise chk.fail(where + ("columns",), "exactly one primary_key column with source _id is required, of type "
                           "uuid (ObjectIds, converted) or text (string ids, kept as they are)")
        if pks[0].type == "text":
            for i, c in enumerate(cols):
                if c.fill == "objectid_time":
                    raise chk.fail(where + ("columns", i, "fill"), "objectid_time needs ObjectId ids: this table keeps "
                                   "string ids (give a literal fill, or none: a document without the field is a reject)")
        drop = tdef.get("drop") or []
        if not isinstance(drop, list):
            raise chk.fail(where + ("drop",), "must be a list of source field names")
        tables[tname] = Table(name=tname, collection=str(tdef.get("collection", tname)), columns=cols,
                              indexes=_parse_indexes(chk, where + ("indexes",), tdef.get("indexes"), tname, set(names),
                                                    on_duplicate),
                              drop=tuple(drop), prisma=_prisma_names(chk, where + ("prisma",), tdef.get("prisma")))
    for t in tables.values():
        for i, c in enumerate(t.columns):
            if c.references and c.references not in tables:
                raise chk.fail(("tables", t.name, "columns", i, "references"), f"table {c.references!r} is not in the mapping")
            if c.references and c.type != tables[c.references].pk.type:
                raise chk.fail(("tables", t.name, "columns", i, "type"),
                               f"references {c.references}, whose id is {tables[c.references].pk.type}: "
                               f"the column must be {tables[c.references].pk.type} too")

    junctions: dict[str, Junction] = {}
    for jname, jdef in (raw.get("junctions") or {}).items():
        where = ("junctions", jname)
        chk.ident(where, jname)
        if jname in tables:
            raise chk.fail(where, "a junction cannot have the name of a table")
        jdef = chk.keys(where, jdef, JUNCTION_KEYS, {"left", "right", "sources"})
        sides = {}
        for s in ("left", "right"):
            sd = chk.keys(where + (s,), jdef[s], {"column", "references"}, {"column", "references"})
            if sd["references"] not in tables:
                raise chk.fail(where + (s, "references"), f"table {sd['references']!r} is not in the mapping")
            if tables[sd["references"]].text_id:
                raise chk.fail(where + (s, "references"), f"table {sd['references']!r} has string ids: a junction "
                               "(an array of ids) needs ObjectId ids on both sides; map the link as a table of its "
                               "own with two references")
            sides[s] = JunctionSide(column=chk.ident(where + (s, "column"), sd["column"]), references=sd["references"])
        if sides["left"].column == sides["right"].column:
            raise chk.fail(where, "left and right columns must differ")
        sources = []
        for i, src in enumerate(jdef["sources"] or []):
            src = chk.keys(where + ("sources", i), src, {"collection", "field", "holds"}, {"collection", "field", "holds"})
            if src["holds"] not in ("left", "right"):
                raise chk.fail(where + ("sources", i, "holds"), "must be left or right")
            owner = sides["right" if src["holds"] == "left" else "left"].references
            if tables[owner].collection != src["collection"]:
                raise chk.fail(where + ("sources", i, "collection"),
                               f"an array holding {src['holds']} ids must live in {tables[owner].collection!r}, the other side")
            sources.append(JunctionSource(collection=src["collection"], field=str(src["field"]), holds=src["holds"]))
        if not sources:
            raise chk.fail(where + ("sources",), "a junction needs at least one source array")
        junctions[jname] = Junction(name=jname, left=sides["left"], right=sides["right"], sources=tuple(sources),
                                    indexes=_parse_indexes(chk, where + ("indexes",), jdef.get("indexes"), jname,
                                                           {sides["left"].column, sides["right"].column}),
                                    prisma=_prisma_names(chk, where + ("prisma",), jdef.get("prisma")))
    ordered = _topological(chk, tables)
    mapping = Mapping(name=str(raw.get("name", Path(path).stem)), path=path, enums=enums, tables=ordered,
                      junctions=junctions, digest=hashlib.sha256(text.encode()).hexdigest()[:16],
                      prisma_enums=prisma_enums)
    mapping.by_collection = {t.collection: t for t in ordered.values()}
    return mapping
