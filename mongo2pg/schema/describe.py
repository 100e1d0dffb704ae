"""A schema as data: the live one (introspection), the one a mapping expects, and their differences."""

from __future__ import annotations

import re
from typing import Any

from ..errors import ConfigError
from ..mapping import Mapping
from .ddl import reference_type

_CAST = re.compile(r"::[\w\" ]+(\[\])?$")


def describe(conn, tables: list[str] | None = None) -> dict[str, Any]:
    """The live schema (current_schema()) in the reference file's shape."""
    with conn.cursor() as cur:
        cur.execute("""
            SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                   pg_get_expr(d.adbin, d.adrelid), t.typtype
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
            JOIN pg_type t ON t.oid = a.atttypid
            LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
            WHERE n.nspname = current_schema() AND c.relkind = 'r'
            ORDER BY c.relname, a.attnum""")
        out_tables: dict[str, Any] = {}
        for rel, col, typ, notnull, default, typtype in cur.fetchall():
            if tables is not None and rel not in tables:
                continue
            if typtype == "e":
                typ = f'"{typ.strip(chr(34))}"'
            else:
                typ = typ.replace("timestamp(3) without time zone", "TIMESTAMP(3)").upper()
            entry = {"name": col, "type": typ, "not_null": bool(notnull)}
            if default is not None:
                entry["default"] = _CAST.sub("", default)
            out_tables.setdefault(rel, {"columns": [], "primary_key": []})["columns"].append(entry)
        cur.execute("""
            SELECT (SELECT relname FROM pg_class WHERE oid = c.conrelid), c.conname, c.contype,
                   ARRAY(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(n, o)
                         JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.o)::text[],
                   (SELECT relname FROM pg_class WHERE oid = c.confrelid),
                   ARRAY(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY k(n, o)
                         JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.o)::text[],
                   c.confdeltype, c.confupdtype
            FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
            WHERE n.nspname = current_schema() AND c.contype IN ('p', 'f')""")
        actions = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}
        fks = []
        # relname, not regclass::text: the latter quotes names that need it ("evil""name").
        for rel, name, kind, cols, ref, refcols, deltype, updtype in cur.fetchall():
            if tables is not None and rel not in tables:
                continue
            if kind == "p":
                out_tables.setdefault(rel, {"columns": [], "primary_key": []})["primary_key"] = list(cols)
            else:
                fks.append({"table": rel, "name": name, "columns": list(cols), "references": ref,
                            "ref_columns": list(refcols), "on_delete": actions[deltype], "on_update": actions[updtype]})
        cur.execute("""
            SELECT t.relname, i.relname, x.indisunique,
                   ARRAY(SELECT a.attname FROM unnest(x.indkey) WITH ORDINALITY k(n, o)
                         JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.n ORDER BY k.o)::text[]
            FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
            JOIN pg_namespace n ON n.oid = t.relnamespace
            WHERE n.nspname = current_schema() AND NOT x.indisprimary""")
        indexes = [{"table": t, "name": i, "unique": bool(u), "columns": list(cols)}
                   for t, i, u, cols in cur.fetchall() if tables is None or t in tables]
        cur.execute("""SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder)::text[]
                       FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid
                       JOIN pg_namespace n ON n.oid = t.typnamespace
                       WHERE n.nspname = current_schema() GROUP BY t.typname""")
        enums = {name: list(vals) for name, vals in cur.fetchall()}
    return {"enums": enums, "tables": out_tables, "foreign_keys": fks, "indexes": indexes}


def expected_schema(mapping: Mapping) -> dict[str, Any]:
    """What `apply` + `finalize` create, in the reference file's shape."""
    tables: dict[str, Any] = {}
    for t in mapping.tables.values():
        cols = []
        for c in t.columns:
            entry = {"name": c.name, "type": reference_type(c), "not_null": c.not_null}
            if c.default is not None:
                entry["default"] = c.default
            cols.append(entry)
        tables[t.name] = {"columns": cols, "primary_key": [t.pk.name]}
    for j in mapping.junctions.values():
        tables[j.name] = {"columns": [{"name": j.left.column, "type": "UUID", "not_null": True},
                                      {"name": j.right.column, "type": "UUID", "not_null": True}],
                          "primary_key": [j.left.column, j.right.column]}
    return {"enums": {k: list(v) for k, v in mapping.enums.items()}, "tables": tables,
            "foreign_keys": mapping.foreign_keys(),
            "indexes": [{"table": t, "name": i.name, "unique": i.unique, "columns": list(i.columns)}
                        for t, i in mapping.indexes()]}


def diff_schemas(expected: dict[str, Any], actual: dict[str, Any], stage: str = "final") -> list[str]:
    """Human-readable differences (empty when the schemas match).

    stage "apply": enums, tables, columns and keys only, before the load adds indexes and foreign keys.
    """
    out: list[str] = []
    for name, vals in expected["enums"].items():
        if actual["enums"].get(name) != vals:
            out.append(f"enum {name}: expected {vals}, found {actual['enums'].get(name)}")
    for tname, t in expected["tables"].items():
        at = actual["tables"].get(tname)
        if at is None:
            out.append(f"table {tname}: missing")
            continue
        acols = {c["name"]: c for c in at["columns"]}
        for c in t["columns"]:
            a = acols.get(c["name"])
            if a is None:
                out.append(f"column {tname}.{c['name']}: missing")
                continue
            for key in ("type", "not_null", "default"):
                if c.get(key) != a.get(key):
                    out.append(f"column {tname}.{c['name']}: {key} expected {c.get(key)!r}, found {a.get(key)!r}")
        extra = set(acols) - {c["name"] for c in t["columns"]}
        if extra:
            out.append(f"table {tname}: unexpected columns {sorted(extra)}")
        if t["primary_key"] != at["primary_key"]:
            out.append(f"table {tname}: primary key expected {t['primary_key']}, found {at['primary_key']}")
    for kind, key in (("foreign_keys", "foreign key"), ("indexes", "index")) if stage == "final" else ():
        exp = {x["name"]: x for x in expected[kind] if x["table"] in expected["tables"]}
        act = {x["name"]: x for x in actual[kind] if x["table"] in expected["tables"]}
        for name, x in exp.items():
            if name not in act:
                out.append(f"{key} {name}: missing")
            elif x != act[name]:
                out.append(f"{key} {name}: expected {x}, found {act[name]}")
        for name in sorted(set(act) - set(exp)):
            out.append(f"{key} {name}: unexpected")
    return out


def verify_applied(conn, mapping: Mapping) -> None:
    """Refuse a target whose tables, columns, types or keys differ from the mapping (before loading)."""
    diffs = diff_schemas(expected_schema(mapping), describe(conn, list(mapping.tables) + list(mapping.junctions)),
                         stage="apply")
    if diffs:
        raise ConfigError(f"the target schema differs from the mapping ({len(diffs)} difference(s), first: "
                          f"{'; '.join(diffs[:3])}): drop or fix those tables, or rerun with a mapping that matches; "
                          "`mongo2pg schema diff --stage apply` lists them all")
