"""A migrated database read back through a real Prisma Client (generated from `mongo2pg schema prisma`),
every model with every relation, page by page (tests/prisma/read_all.js), compared with the source documents:
row counts and ids, every column's value, every foreign key's relation both ways, every junction's rows and
each side's list of them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from bson import ObjectId, json_util
from bson.json_util import RELAXED_JSON_OPTIONS

from mongo2pg.ids import uuid_text
from mongo2pg.mapping import Column, Mapping
from mongo2pg.prisma.dmmf import read_dmmf

ROOT = Path(__file__).resolve().parent.parent
PRISMA = ROOT / "node_modules" / ".bin" / "prisma"
READ_ALL = ROOT / "tests" / "prisma" / "read_all.js"


def prisma_env() -> dict[str, str]:
    # Offline, the CLI needs PRISMA_SCHEMA_ENGINE_BINARY to name any existing file (generate does not use it).
    return dict(os.environ, PRISMA_SCHEMA_ENGINE_BINARY=sys.executable, CHECKPOINT_DISABLE="1",
                NODE_PATH=str(ROOT / "node_modules"))


def generate_client(work: Path, mapping_ref: str) -> tuple[Path, dict]:
    """schema prisma for the mapping, with the client generated into work/client; (client dir, full DMMF)."""
    schema_file = work / "schema.prisma"
    r = subprocess.run([sys.executable, "-m", "mongo2pg.cli", "schema", "prisma", "--mapping", mapping_ref, "--out",
                        str(schema_file)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    text = schema_file.read_text().replace('provider = "prisma-client-js"',
                                           f'provider = "prisma-client-js"\n  output   = "{work / "client"}"', 1)
    schema_file.write_text(text)
    if not (work / "node_modules").exists():  # generate and the client resolve @prisma/client from here
        (work / "node_modules").symlink_to(ROOT / "node_modules")
    g = subprocess.run([str(PRISMA), "generate", "--schema", str(schema_file)], capture_output=True, text=True,
                       env=prisma_env(), cwd=work)
    assert g.returncode == 0, g.stdout + g.stderr
    return work / "client", read_dmmf(schema_file)


def read_all(work: Path, client: Path, dmmf: dict, uri: str, page: int = 250) -> list[dict[str, Any]]:
    (work / "dmmf.json").write_text(json.dumps(dmmf))
    out = work / "rows.jsonl"
    r = subprocess.run(["node", str(READ_ALL), str(client), uri, str(work / "dmmf.json"), str(out), str(page)],
                       capture_output=True, text=True, env=prisma_env())
    assert r.returncode == 0, r.stderr[-3000:]
    return [json.loads(line) for line in out.read_text().splitlines()]


def _ms_iso(dt) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def expected_value(col: Column, doc: dict, mapping: Mapping) -> Any:
    """What Prisma Client returns (as JSON) for this column of the row migrated from `doc`."""
    v = doc.get(col.source)
    if v is None:
        if col.fill == "objectid_time":
            return _ms_iso(doc["_id"].generation_time)
        return col.fill if col.not_null and col.fill is not None else None
    if col.type == "uuid":
        return uuid_text(v)
    if col.type == "uuid[]":
        return [uuid_text(x) for x in v]
    if col.type == "timestamp":
        return _ms_iso(v)
    if col.type == "bigint":
        return str(v)
    if col.type == "double":
        return float(v)
    if col.type == "jsonb":
        return json.loads(json_util.dumps(v, json_options=RELAXED_JSON_OPTIONS))
    if col.type == "bytea":
        return {"$hex": bytes(v).hex()}  # read_all.js writes Bytes so
    return v


def compare(mapping: Mapping, dmmf: dict, rows: list[dict], documents: dict[str, list[dict]]) -> dict[str, int]:
    """Asserts the read-back equals the source; returns rows read per model."""
    models = {m["name"]: m for m in dmmf["datamodel"]["models"]}
    table_of = {name: m.get("dbName") or name for name, m in models.items()}
    model_of = {t: name for name, t in table_of.items()}
    by_table: dict[str, dict[str, dict]] = defaultdict(dict)
    for r in rows:
        t = table_of[r["model"]]
        key = r["row"]["id"] if t in mapping.tables else "|".join(
            r["row"][f["name"]] for f in models[r["model"]]["fields"] if f["kind"] == "scalar")
        by_table[t][key] = r
    per_model = {m: len(by_table[table_of[m]]) for m in models}
    for t in mapping.tables.values():
        model = models[model_of[t.name]]
        field_of = {(f.get("dbName") or f["name"]): f["name"] for f in model["fields"] if f["kind"] != "object"}
        docs = {uuid_text(d["_id"]): d for d in documents.get(t.collection, [])}
        got = by_table[t.name]
        assert set(got) == set(docs), f"{t.name}: {len(got)} rows read, {len(docs)} documents"
        for key, doc in docs.items():
            row = got[key]["row"]
            for c in t.columns:
                want, have = expected_value(c, doc, mapping), row[field_of[c.name]]
                if c.type.endswith("[]") and want is None:
                    want = have if have in (None, []) else want
                assert have == want, f"{t.name} {key} {c.name}: read {have!r}, source {want!r}"
        for c in t.columns:
            if not c.references:
                continue
            rel = next(f for f in model["fields"] if f["kind"] == "object"
                       and f.get("relationFromFields") == [field_of[c.name]])
            back = next(f for f in models[model_of[c.references]]["fields"] if f["kind"] == "object"
                        and f.get("relationName") == rel["relationName"] and f is not rel)
            children: dict[str, list[str]] = defaultdict(list)
            for key, doc in docs.items():
                ref = doc.get(c.source)
                want = [uuid_text(ref)] if ref is not None else []
                assert got[key]["relations"][rel["name"]] == want, f"{t.name} {key} {rel['name']}"
                if want:
                    children[want[0]].append(key)
            for parent_key, parent in by_table[c.references].items():
                assert sorted(parent["relations"][back["name"]]) == sorted(children.get(parent_key, [])), \
                    f"{c.references} {parent_key} {back['name']}"
    for j in mapping.junctions.values():
        pairs: set[str] = set()
        for s in j.sources:
            for doc in documents.get(s.collection, []):
                for other in doc.get(s.field) or []:
                    own, linked = uuid_text(doc["_id"]), uuid_text(ObjectId(other))
                    pairs.add(f"{linked}|{own}" if s.holds == "left" else f"{own}|{linked}")
        if j.name not in model_of:  # an implicit m:n: no model, each side's list field reads the other side
            names = j.prisma_dict()
            for side, pos, key in ((j.left, 0, "left_field"), (j.right, 1, "right_field")):
                per_side: dict[str, set[str]] = defaultdict(set)
                for p in pairs:
                    ends = p.split("|")
                    per_side[ends[pos]].add(ends[1 - pos])
                for owner_key, owner in by_table[side.references].items():
                    assert set(owner["relations"][names[key]]) == per_side.get(owner_key, set()), \
                        f"{side.references} {owner_key} {names[key]}"
            per_model[j.name] = len(pairs)
            continue
        assert set(by_table[j.name]) == pairs, f"{j.name}: {len(by_table[j.name])} rows read, {len(pairs)} links"
        for side, pos in ((j.left, 0), (j.right, 1)):
            lists = [f for f in models[model_of[side.references]]["fields"] if f["kind"] == "object"
                     and f.get("relationName") == f"{j.name}_{side.column}"]
            per_owner: dict[str, set[str]] = defaultdict(set)
            for p in pairs:
                per_owner[p.split("|")[pos]].add(p)
            for owner_key, owner in by_table[side.references].items():
                assert set(owner["relations"][lists[0]["name"]]) == per_owner.get(owner_key, set()), \
                    f"{side.references} {owner_key} {lists[0]['name']}"
    return per_model
