"""Each way a real migration goes wrong is caught by the right layer, with table, id and field."""

import shutil
import subprocess
import sys
from types import SimpleNamespace

import psycopg2
import pytest

from mongo2pg.validation import ValidateOptions, validate


@pytest.fixture(scope="module")
def migrated(pg, clean_dump, tmp_path_factory):
    work = tmp_path_factory.mktemp("val")
    uri = pg.create_db("t_validate_base")
    r = subprocess.run([sys.executable, "-m", "mongo2pg.cli", "migrate", "--dump", str(clean_dump), "--pg-uri", uri,
                        "--error-log", str(work / "errors.log"), "--checkpoint-file", str(work / "cp.json"),
                        "--quiet"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return uri, work


def _one(uri, query):
    conn = psycopg2.connect(uri)
    with conn.cursor() as cur:
        cur.execute(query)
        row = cur.fetchone() if cur.description else None
    conn.commit()
    conn.close()
    return row


CORRUPTIONS = {
    "changed value": ('UPDATE "crm_Accounts" SET name = name || \'!\' WHERE id = (SELECT id FROM "crm_Accounts" ORDER BY id LIMIT 1) '
                      'RETURNING id::text', "fieldMatch", "name"),
    "lost row": ('DELETE FROM "tasksComments" WHERE id = (SELECT id FROM "tasksComments" ORDER BY id LIMIT 1) RETURNING id::text',
                 "rowCount", None),
    "extra row": ('INSERT INTO "Employees" (id, "__v", avatar, name, status, salary) VALUES '
                  '(\'5aaaaaaa-aaaa-8000-8000-aaaaaaaaaaaa\', 0, \'a\', \'b\', \'c\', 1) RETURNING id::text',
                  "rowCount", None),
    "dangling foreign key": ('ALTER TABLE "Tasks" DROP CONSTRAINT "Tasks_section_fkey"; UPDATE "Tasks" SET section = '
                             '\'5bbbbbbb-bbbb-8000-8000-bbbbbbbbbbbb\' WHERE id = (SELECT id FROM "Tasks" ORDER BY id LIMIT 1) '
                             'RETURNING id::text', "referentialIntegrity", "section"),
    "missing junction row": ('DELETE FROM "AccountWatchers" WHERE (account_id, user_id) = (SELECT account_id, user_id '
                             'FROM "AccountWatchers" ORDER BY 1, 2 LIMIT 1) RETURNING account_id::text',
                             "referentialIntegrity", None),
    "shifted timestamp": ('UPDATE "crm_Contracts" SET "startDate" = "startDate" + interval \'1 hour\' WHERE id = '
                          '(SELECT id FROM "crm_Contracts" WHERE "startDate" IS NOT NULL ORDER BY id LIMIT 1) RETURNING id::text',
                          "dataTypes", "startDate"),
    "wrong enum": ('UPDATE "Tasks" SET "taskStatus" = CASE WHEN "taskStatus" = \'ACTIVE\' THEN \'COMPLETE\'::"taskStatus" '
                   'ELSE \'ACTIVE\'::"taskStatus" END WHERE id = (SELECT id FROM "Tasks" WHERE "taskStatus" IS NOT '
                   'NULL ORDER BY id LIMIT 1) RETURNING id::text', "dataTypes", "taskStatus"),
    "changed jsonb": ('UPDATE "Invoices" SET invoice_items = \'{"tampered": true}\' WHERE id = (SELECT id FROM '
                      '"Invoices" WHERE invoice_items IS NOT NULL ORDER BY id LIMIT 1) RETURNING id::text', "dataTypes", "invoice_items"),
    "dropped index": ('DROP INDEX "crm_Accounts_status_idx"; SELECT \'x\'', "schema", None),
    # Aimed at the chunk digest (validation.rows._chunk_proven): its NULL mark and separator as values.
    "NULL replaced by the digest NULL mark": (
        'UPDATE "crm_Accounts" SET website = chr(30) WHERE id = (SELECT id FROM "crm_Accounts" WHERE website IS NULL '
        'ORDER BY id LIMIT 1) RETURNING id::text', "fieldMatch", "website"),
    "separator moved between two fields": (
        'UPDATE "crm_Accounts" SET name = name || chr(31) || coalesce(website, \'\'), website = NULL WHERE id = '
        '(SELECT id FROM "crm_Accounts" ORDER BY id LIMIT 1) RETURNING id::text', "fieldMatch", "name"),
}


@pytest.mark.parametrize("builder", ["C digest builder", "Python rules only"])
@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_corruption_is_caught_by_the_right_layer(pg, migrated, clean_dump, tmp_path, name, builder, monkeypatch):
    from mongo2pg.validation import expect

    assert expect._RawDigest is not None, "setup builds mongo2pg.validation._fastdigest"
    if builder == "Python rules only":  # as without a C compiler: every document decoded, expect.py's rows
        monkeypatch.setattr(expect, "_RawDigest", None)
    _, work = migrated
    uri = pg.create_db("t_val_" + name.replace(" ", "_") + ("_py" if "Python" in builder else ""),
                       template="t_validate_base")
    query, layer, field = CORRUPTIONS[name]
    changed_id = _one(uri, query)[0]
    report = validate(ValidateOptions(pg_uri=uri, dump=str(clean_dump), report=str(tmp_path / "r.json"),
                                      error_log=str(work / "errors.log")))
    assert report["overallStatus"] == "FAIL"
    assert layer in report["failedLayers"]
    text = (tmp_path / "r.json").read_text()
    if name == "dropped index":
        assert "crm_Accounts_status_idx: missing" in text
    elif name in ("lost row", "extra row", "missing junction row"):
        from mongo2pg.ids import objectid_from_uuid

        assert str(objectid_from_uuid(changed_id)) in text
    else:
        mism = report["sampleRecordValidation"]["fieldMismatches"] + report["referentialIntegrityValidation"][
            "orphanedRecords"]
        assert any(m.get("postgresUuid") == changed_id and m["fieldName"] == field for m in mism) or any(
            m.get("foreignKeyField") == field for m in mism), mism[:3]


def test_clean_migration_passes_and_cli_exit_codes(migrated, clean_dump, tmp_path):
    uri, work = migrated
    r = subprocess.run([sys.executable, "-m", "mongo2pg.cli", "validate", "--dump", str(clean_dump), "--pg-uri", uri,
                        "--error-log", str(work / "errors.log"), "--report", str(tmp_path / "r.json")],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "Migration validation: PASS" in r.stdout
    assert (tmp_path / "r.md").exists()
    assert "s3cret" not in (tmp_path / "r.json").read_text()


def test_a_broken_transform_is_caught(pg, clean_dump, tmp_path, monkeypatch):
    """Validation does not reuse the transform: inject a bug into it and the migration's output fails."""
    from mongo2pg.migration import Options, run
    from mongo2pg.transform import compiled, converters, table

    # Off by one in integers, in every path: the C row builder's lines, the compiled row's inline case and
    # the generic converter.
    original, original_fast = converters.conv_integer, compiled._fast_expr
    monkeypatch.setitem(converters.CONVERTERS, "integer", lambda v: str(int(original(v)) + 1))
    monkeypatch.setattr(compiled, "_fast_expr", lambda col, var: [f"{var} = str(v + 1) if type(v) is int else "
                                                                   f"_conv_{var}(v)"] if col.type == "integer"
                        else original_fast(col, var))
    original_plan = table.TableTransform._raw_plan

    def broken_plan(self, mapping):
        row = original_plan(self, mapping).row
        ints = [1 + i for i, c in enumerate(c for c in self.table.columns if not c.primary_key) if c.type == "integer"]

        def broken_row(raw):
            r = row(raw)
            if r is None:
                return None
            fields = r[0].rstrip("\n").split("\t")
            for i in ints:
                fields[i] = fields[i] if fields[i] == "\\N" else str(int(fields[i]) + 1)
            return ("\t".join(fields) + "\n", *r[1:])
        return SimpleNamespace(row=broken_row)

    monkeypatch.setattr(table.TableTransform, "_raw_plan", broken_plan)
    uri = pg.create_db("t_broken_transform")
    run(Options(pg_uri=uri, dump=str(clean_dump), workers=1, error_log=str(tmp_path / "e.log"),
                checkpoint_file=str(tmp_path / "c.json")))
    report = validate(ValidateOptions(pg_uri=uri, dump=str(clean_dump), report=str(tmp_path / "r.json"),
                                      error_log=str(tmp_path / "e.log")))
    assert report["overallStatus"] == "FAIL" and "fieldMatch" in report["failedLayers"]
    assert any(m["fieldName"] == "__v" for m in report["sampleRecordValidation"]["fieldMismatches"])
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_a_seeded_sample_checks_that_many_rows_per_table_and_still_counts_every_row(pg, migrated, clean_dump,
                                                                                    tmp_path):
    uri, work = migrated
    opts = dict(pg_uri=uri, dump=str(clean_dump), error_log=str(work / "errors.log"), sample=40, seed=3)
    report = validate(ValidateOptions(report=str(tmp_path / "r.json"), **opts))
    assert report["overallStatus"] == "PASS" and report["mode"] == "sample of 40 per table (seed 3)"
    per_table = {d["tableName"]: d for d in report["detailedResults"]}
    assert all(d["sampleValidation"]["sampleSize"] == min(40, d["rowCount"]["mongoCount"]) for d in per_table.values())
    assert report["rowsChecked"] < report["summary"]["totalRecords"]
    # a row lost outside the sample is still found: counts cover every row
    lost = pg.create_db("t_val_sample_lost", template="t_validate_base")
    _one(lost, 'DELETE FROM "tasksComments" WHERE id = (SELECT id FROM "tasksComments" ORDER BY id DESC LIMIT 1) '
               'RETURNING id::text')
    report = validate(ValidateOptions(report=str(tmp_path / "r2.json"), **{**opts, "pg_uri": lost}))
    assert report["overallStatus"] == "FAIL" and "rowCount" in report["failedLayers"]
