import json
from pathlib import Path

import psycopg2
import pytest

from mongo2pg import schema
from mongo2pg.errors import MappingError
from mongo2pg.mapping import BUILTIN_DIR, load_mapping, parse_mapping

REFERENCE = json.loads((BUILTIN_DIR / "nextcrm-postgresql-schema.json").read_text())
MODEL = json.loads((BUILTIN_DIR / "nextcrm-mongodb-model.json").read_text())


def _canon(s):
    return {"enums": s["enums"],
            "tables": {t: {"columns": sorted(v["columns"], key=lambda c: c["name"]), "primary_key": v["primary_key"]}
                       for t, v in s["tables"].items()},
            "foreign_keys": sorted(s["foreign_keys"], key=lambda f: f["name"]),
            "indexes": sorted(s["indexes"], key=lambda i: i["name"])}


def test_nextcrm_mapping_covers_29_models_and_10_junctions_in_fk_order():
    m = load_mapping("nextcrm")
    assert len(m.tables) == 29 and len(m.junctions) == 10
    order = list(m.tables)
    for t in m.tables.values():
        for c in t.columns:
            if c.references:
                assert order.index(c.references) < order.index(t.name), (t.name, c.name)


def test_every_source_field_is_mapped_or_explicitly_dropped():
    m = load_mapping("nextcrm")
    for model, mdef in MODEL["models"].items():
        t = m.by_collection[model]
        handled = {c.source for c in t.columns} | set(t.drop) | {s.field for _, s in m.junction_sources(model)}
        for f in mdef["fields"]:
            if "relation" in f or f["type"] in MODEL["models"]:
                continue  # Prisma's virtual relation fields are not stored
            stored = "_id" if f.get("id") else f.get("stored_as", f["name"])
            assert stored in handled, f"{model}.{stored} is neither mapped nor dropped"


def test_expected_schema_equals_the_reference():
    exp = schema.expected_schema(load_mapping("nextcrm"))
    assert len(exp["foreign_keys"]) == 52 and len(exp["indexes"]) == 121
    assert _canon(exp) == _canon(REFERENCE)


def test_created_schema_matches_the_reference_in_postgresql(pg_db):
    m = load_mapping("nextcrm")
    conn = psycopg2.connect(pg_db)
    schema.apply(conn, m)
    schema.apply(conn, m)  # rerun is safe
    schema.finalize(conn, m)
    assert schema.finalize(conn, m) == 0
    live = schema.describe(conn)
    conn.close()
    assert schema.diff_schemas(REFERENCE, live) == []


@pytest.mark.parametrize("text,where", [
    ("tables:\n  T:\n    columns:\n      - {name: id, source: _id, type: uuid, primary_key: true}\n"
     "      - {name: x, type: strnig}\n", ":5: tables.T.columns.1.type: unknown type"),
    ("tables:\n  T:\n    colums: []\n", ":3: tables.T.colums: unknown key"),
    ("tables:\n  T:\n    columns:\n      - {name: x, type: text}\n", "exactly one primary_key"),
    ("tables:\n  T:\n    columns:\n      - {name: id, source: _id, type: uuid, primary_key: true}\n"
     "      - {name: u, type: uuid, references: Nope}\n", "table 'Nope' is not in the mapping"),
    ("tables:\n  T:\n    columns:\n      - {name: id, source: _id, type: uuid, primary_key: true}\n"
     "      - {name: d, type: text, default: \"1; DROP TABLE x\"}\n", ":5: tables.T.columns.1.default"),
    ("tables: [unclosed\n", ":2: not valid YAML"),
])
def test_malformed_mapping_names_line_and_key(text, where):
    with pytest.raises(MappingError) as err:
        parse_mapping(text, "bad.yml")
    assert "bad.yml" in str(err.value) and where in str(err.value)


def test_sql_injection_through_identifiers_is_harmlessly_quoted(pg_db):
    evil = 'x"; DROP TABLE victim; --'
    m = parse_mapping(f"tables:\n  '{evil}':\n    columns:\n      - {{name: id, source: _id, type: uuid, primary_key: true}}\n"
                      f"      - {{name: '{evil}', source: a, type: text}}\n")
    conn = psycopg2.connect(pg_db)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE victim (i int)")
    conn.commit()
    schema.apply(conn, m)
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('victim') IS NOT NULL, to_regclass(%s) IS NOT NULL", (f'"{evil.replace(chr(34), chr(34) * 2)}"',))
        assert cur.fetchone() == (True, True)
    conn.close()


def test_overlong_identifier_is_rejected():
    with pytest.raises(MappingError, match="63 bytes"):
        parse_mapping("tables:\n  " + "t" * 64 + ":\n    columns:\n      - {name: id, source: _id, type: uuid, primary_key: true}\n")


def test_mapping_file_path_is_accepted(tmp_path: Path):
    p = tmp_path / "m.yml"
    p.write_text((BUILTIN_DIR / "nextcrm.yml").read_text())
    assert load_mapping(str(p)).digest == load_mapping("nextcrm").digest
