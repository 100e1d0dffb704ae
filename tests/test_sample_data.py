import filecmp
import gzip
import json
import subprocess
import sys
from collections import Counter

import bson

from mongo2pg.fixtures.shape import DIRTY_KINDS, PRODUCTION_TOTAL, collection_counts
from mongo2pg.fixtures.write import write_dump
from mongo2pg.mapping import load_mapping
from mongo2pg.source import dumpfmt

RUNBOOK = {"crm_Accounts": 15_340, "crm_Contacts": 42_180, "crm_Opportunities": 50_000, "Users": 1_250,
           "crm_Leads": 8_920, "crm_Contracts": 3_210, "TodoList": 890, "ImageUpload": 233, "Employees": 45,
           "crm_Industry_Type": 50, "gpt_models": 4}


def test_scale_one_counts_are_the_runbooks():
    counts = collection_counts(1)
    assert len(counts) == 29 and sum(counts.values()) == PRODUCTION_TOTAL == 1_254_390
    for name, n in RUNBOOK.items():
        assert counts[name] == n


def _run(*args):
    return subprocess.run([sys.executable, "-m", "mongo2pg.cli", "sample-data", *args], capture_output=True,
                          text=True, check=True)


def test_same_seed_gives_byte_identical_dumps_plain_and_gzip(tmp_path):
    for gz in ([], ["--gzip"]):
        a, b = tmp_path / f"a{len(gz)}", tmp_path / f"b{len(gz)}"
        _run("--scale", "0.005", "--seed", "3", "--out-dump", str(a), *gz)
        _run("--scale", "0.005", "--seed", "3", "--out-dump", str(b), *gz)
        names = sorted(p.name for p in (a / "nextcrm").iterdir())
        assert len([n for n in names if ".bson" in n]) == 29
        assert len([n for n in names if ".metadata.json" in n]) == 29
        cmp = filecmp.cmpfiles(a / "nextcrm", b / "nextcrm", names, shallow=False)
        assert cmp[1] == [] and cmp[2] == []
    first = next((tmp_path / "a1" / "nextcrm").glob("Users.bson.gz"))
    with gzip.open(first) as f:
        assert sum(1 for _ in bson.decode_file_iter(f)) == collection_counts(0.005)["Users"]
    meta = json.loads(gzip.open(tmp_path / "a1" / "nextcrm" / "Users.metadata.json.gz").read())
    assert meta["collectionName"] == "Users" and meta["indexes"][0]["name"] == "_id_"


def test_clean_data_references_resolve_and_links_sit_on_both_sides(clean_dump):
    m = load_mapping("nextcrm")
    colls = dumpfmt.list_collections(dumpfmt.resolve_db_dir(clean_dump))
    ids = {name: {d["_id"] for d in dumpfmt.iter_documents(c)} for name, c in colls.items()}
    one_side_only = both = 0
    for t in m.tables.values():
        for d in dumpfmt.iter_documents(colls[t.collection]):
            for c in t.columns:
                if c.references and d.get(c.source) is not None:
                    assert d[c.source] in ids[m.tables[c.references].collection], (t.name, c.name)
    co = {(d["_id"], x) for d in dumpfmt.iter_documents(colls["crm_Contacts"]) for x in d.get("opportunitiesIDs", [])}
    oc = {(x, d["_id"]) for d in dumpfmt.iter_documents(colls["crm_Opportunities"]) for x in d.get("connected_contacts", [])}
    both, one_side_only = len(co & oc), len(co ^ oc)
    assert both > 0 and one_side_only > 0  # the reverse side carries links the forward side lacks


def test_dirty_kinds_all_appear_at_the_rate_asked(dirty_dump):
    manifest = json.loads((dirty_dump / "sample-data-manifest.json").read_text())
    total = manifest["total"]
    assert abs(manifest["dirty_documents"] / total - 0.03) < 0.006
    assert set(manifest["dirty"]) == set(DIRTY_KINDS) and all(n > 0 for n in manifest["dirty"].values())
    colls = dumpfmt.list_collections(dumpfmt.resolve_db_dir(dirty_dump))
    by_kind = Counter()
    docs = {}
    for kind, coll, _id, field in manifest["dirty_records"]:
        if coll not in docs:
            docs[coll] = {str(d["_id"]): d for d in dumpfmt.iter_documents(colls[coll])}
        d = docs[coll][_id]
        if kind == "nul_in_string":
            assert "\x00" in d[field]
        elif kind == "missing_required":
            assert field not in d
        elif kind == "number_as_string":
            assert isinstance(d[field], str) and d[field].lstrip("-").isdigit()
        elif kind == "date_out_of_range":
            assert isinstance(d[field], bson.DatetimeMS)
        elif kind == "duplicate_array_id":
            assert len(d[field]) != len(set(d[field]))
        by_kind[kind] += 1
    assert sum(by_kind.values()) == manifest["dirty_documents"]


def test_scale_one_is_the_runbooks_1254390_documents_and_a_dump_holds_exactly_its_scales_counts(tmp_path):
    """Scale 1 is the runbook's record count; the writer writes exactly the counts of the scale it is given
    (checked at 0.05: writing scale 1 takes minutes, and `make bench` writes it)."""
    full = collection_counts(1)
    assert sum(full.values()) == 1_254_390 and len(full) == 29 and full["crm_Accounts"] == 15_340
    write_dump(tmp_path, scale=0.05, seed=1)
    colls = dumpfmt.list_collections(dumpfmt.resolve_db_dir(tmp_path))
    counts = {n: dumpfmt.count_documents(c) for n, c in colls.items()}
    assert counts == collection_counts(0.05)
    with open(colls["crm_Accounts"].bson_path, "rb") as f:
        assert sum(1 for _ in bson.decode_file_iter(f)) == collection_counts(0.05)["crm_Accounts"]
