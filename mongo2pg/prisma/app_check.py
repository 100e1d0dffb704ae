"""Will the application still read its data? The target database against the app's *current* schema.prisma
(which may have drifted from the one the migration started from: an enum value dropped, a field made
required, a column renamed), all in SQL, so it runs on any size in seconds.

Per model and field of the app's schema: the table and the column exist; the column's type is one the
field's Prisma type reads; an enum field holds only values the app's enum has (its stored, `@map`ped
names); a required field holds no NULL; an `Int` in a bigint column fits 32 bits; a `@db.VarChar(n)`
holds no longer text. Each problem: the model and field, how many rows, example ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from psycopg2 import sql

# The PostgreSQL types (information_schema's data_type, udt_name for enums and arrays) each Prisma type reads.
READS = {"String": {"text", "character varying", "character", "uuid", "citext", "xml", "inet"},
         "Int": {"integer", "smallint", "bigint"}, "BigInt": {"bigint", "integer", "smallint"},
         "Float": {"double precision", "real", "numeric"}, "Decimal": {"numeric", "double precision", "real"},
         "Boolean": {"boolean"}, "DateTime": {"timestamp without time zone", "timestamp with time zone", "date",
                                              "time without time zone", "time with time zone"},
         "Json": {"json", "jsonb"}, "Bytes": {"bytea"}}
# An array column's element type by its udt_name (information_schema says only ARRAY).
ELEMENT = {"int2": "smallint", "int4": "integer", "int8": "bigint", "float4": "real", "float8": "double precision",
           "bool": "boolean", "varchar": "character varying", "bpchar": "character",
           "timestamp": "timestamp without time zone", "timestamptz": "timestamp with time zone"}
EXAMPLES = 3


@dataclass
class Problem:
    model: str
    field: str
    what: str
    rows: int = 0
    examples: list[str] = field(default_factory=list)

    def line(self) -> str:
        count = f": {self.rows:,} rows" if self.rows else ""
        eg = f" (e.g. {', '.join(self.examples)})" if self.examples else ""
        return f"{self.model}.{self.field}{count}: {self.what}{eg}"


def check_app(conn, dmmf: dict[str, Any]) -> list[Problem]:
    """Every problem the app's schema (its DMMF) would meet reading the database behind `conn`."""
    dm = dmmf["datamodel"]
    enums = {e["name"]: [v.get("dbName") or v["name"] for v in e["values"]] for e in dm["enums"]}
    problems: list[Problem] = []
    with conn.cursor() as cur:
        cur.execute("SELECT table_name, column_name, data_type, udt_name FROM information_schema.columns "
                    "WHERE table_schema = current_schema()")
        columns: dict[str, dict[str, tuple[str, str]]] = {}
        for table, column, data_type, udt in cur.fetchall():
            columns.setdefault(table, {})[column] = (data_type, udt)
        for model in dm["models"]:
            table = model.get("dbName") or model["name"]
            if table not in columns:
                problems.append(Problem(model["name"], "*", f"table {table} is missing"))
                continue
            key = [f.get("dbName") or f["name"] for f in model["fields"] if f.get("isId")]
            for f in model["fields"]:
                if f["kind"] in ("scalar", "enum"):
                    problems += _check_field(cur, model["name"], table, key, f, columns[table], enums)
    conn.rollback()
    return problems


def _check_field(cur, model: str, table: str, key: list[str], f: dict, cols: dict[str, tuple[str, str]],
                 enums: dict[str, list[str]]) -> list[Problem]:
    column = f.get("dbName") or f["name"]
    if column not in cols:
        return [Problem(model, f["name"], f"column {table}.{column} is missing")]
    data_type, udt = cols[column]
    out: list[Problem] = []
    col, tbl = sql.Identifier(column), sql.Identifier(table)
    element = ELEMENT.get(udt[1:], udt[1:]) if data_type == "ARRAY" else data_type
    if f["isList"] != (data_type == "ARRAY"):
        return [Problem(model, f["name"], f"the app reads {'a list' if f['isList'] else 'one value'}, the column "
                                          f"is {data_type}")]
    if f["kind"] == "enum":
        allowed = enums[f["type"]]
        value = sql.SQL("v::text") if f["isList"] else sql.SQL("{}::text").format(col)
        bad = (sql.SQL("EXISTS (SELECT 1 FROM unnest({}) v WHERE {} <> ALL(%s))").format(col, value)
               if f["isList"] else sql.SQL("{} IS NOT NULL AND {} <> ALL(%s)").format(col, value))
        held = (sql.SQL("SELECT DISTINCT v::text FROM {} t, unnest(t.{}) v WHERE v::text <> ALL(%s) LIMIT 5")
                if f["isList"] else
                sql.SQL("SELECT DISTINCT {}::text FROM {} WHERE {}::text <> ALL(%s) LIMIT 5"))
        held = held.format(tbl, col) if f["isList"] else held.format(col, tbl, col)
        cur.execute(held, (allowed,))
        values = [r[0] for r in cur.fetchall()]
        if values:
            out.append(_counted(cur, model, f["name"], table, key, bad, (allowed,),
                                f"rows hold {', '.join(values)}, which enum {f['type']} of the app lacks"))
    else:
        if element not in READS.get(f["type"], set()):
            return [Problem(model, f["name"], f"the column is {data_type if data_type != 'ARRAY' else element + '[]'}"
                                              f", which the app's {f['type']} does not read")]
        if f["type"] == "Int" and element == "bigint" and not f["isList"]:
            out.append(_counted(cur, model, f["name"], table, key,
                                sql.SQL("{} NOT BETWEEN -2147483648 AND 2147483647").format(col), (),
                                "values outside the app's Int (32 bits)"))
        native = f.get("nativeType")
        if native and native[0] == "VarChar" and native[1] and not f["isList"]:
            limit = int(native[1][0])
            out.append(_counted(cur, model, f["name"], table, key, sql.SQL("length({}) > %s").format(col), (limit,),
                                f"texts longer than the app's VarChar({limit})"))
    if f["isRequired"] and not f["isList"]:
        out.append(_counted(cur, model, f["name"], table, key, sql.SQL("{} IS NULL").format(col), (),
                            "NULL in a field the app requires"))
    return [p for p in out if p.rows]


def _counted(cur, model: str, field_name: str, table: str, key: list[str], where: sql.Composable, args: tuple,
             what: str) -> Problem:
    ident = (sql.SQL("concat_ws(',', {})").format(sql.SQL(", ").join(sql.Identifier(k) for k in key))
             if key else sql.SQL("ctid::text"))
    cur.execute(sql.SQL("SELECT count(*) FROM {} WHERE {}").format(sql.Identifier(table), where), args)
    rows = cur.fetchone()[0]
    examples: list[str] = []
    if rows:
        cur.execute(sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY 1 LIMIT %s").format(
            ident, sql.Identifier(table), where), (*args, EXAMPLES))
        examples = [str(r[0]) for r in cur.fetchall()]
    return Problem(model, field_name, what, rows, examples)
