"""MongoDB backups: the engine's dump/restore (mongodump format), the backup and archive roles."""

from __future__ import annotations

import filecmp
import gzip
import json
import subprocess
from pathlib import Path

import bson
import pymongo
import pytest
from ansible_run import ROOT, playbook, recap

from mongo2pg.cli import main as cli
from mongo2pg.ops import backup
from mongo2pg.source import dumpfmt

SOURCE_DB = "bk_source"


@pytest.fixture(scope="module")
def seeded(mongo, clean_dump):
    """The clean sample dump restored into the test server: a live source to back up."""
    backup.restore_database(clean_dump, mongo.uri, db="nextcrm", target_db=SOURCE_DB, drop=True)
    return mongo


def _raw_docs(dump_dir: Path, db: str) -> dict[str, list[bytes]]:
    colls = dumpfmt.list_collections(dumpfmt.resolve_db_dir(dump_dir, db))
    return {name: list(dumpfmt.iter_raw(c)) for name, c in colls.items()}


def test_restore_then_dump_gives_the_same_documents(seeded, clean_dump, tmp_path):
    out = tmp_path / "again"
    result = backup.dump_database(seeded.uri, SOURCE_DB, out, gzip_files=True)
    original, again = _raw_docs(clean_dump, "nextcrm"), _raw_docs(out, SOURCE_DB)
    assert set(again) == set(original) and len(again) == 29
    for name in original:  # byte-identical BSON, in _id order
        assert sorted(again[name]) == sorted(original[name]), name
    assert result.counts() == {n: len(d) for n, d in original.items()}
    # mongodump's layout: <db>/<coll>.bson.gz + <coll>.metadata.json.gz, files 0600 in 0700 folders
    meta = json.loads(gzip.decompress((out / SOURCE_DB / "Invoices.metadata.json.gz").read_bytes()))
    assert meta["collectionName"] == "Invoices" and meta["indexes"][0]["name"] == "_id_"
    assert (out / SOURCE_DB).stat().st_mode & 0o777 == 0o700
    assert (out / SOURCE_DB / "Invoices.bson.gz").stat().st_mode & 0o777 == 0o600
    first = bson.decode(again["Invoices"][0])
    assert isinstance(first["_id"], bson.ObjectId)


def test_restore_refuses_a_non_empty_target_without_drop(seeded, clean_dump, capsys):
    code = cli(["restore", "--dump", str(clean_dump), "--mongo-uri", seeded.uri, "--target-db", SOURCE_DB])
    err = capsys.readouterr().err
    assert code == 2 and "already holds" in err and "--drop" in err
    # with --drop the same restore replaces them, counts unchanged
    assert cli(["restore", "--dump", str(clean_dump), "--mongo-uri", seeded.uri, "--target-db", SOURCE_DB,
                "--drop"]) == 0
    assert backup.collection_counts(seeded.uri, SOURCE_DB) == backup.dump_counts(clean_dump)


def _backup_vars(mongo, tmp_path: Path, **extra) -> list[str]:
    return ["-e", json.dumps({"mongo_uri": mongo.uri, "mongo_db": SOURCE_DB, "artifacts_dir": str(tmp_path / "art"),
                              "backup_root": str(tmp_path / "backups"),
                              "backup_secondary_dir": str(tmp_path / "secondary"), "backup_min_collections": 26,
                              "lab_pg_password": "unused", "lab_app_password": "unused",
                              "lab_monitor_password": "unused", **extra})]


def test_backup_phase_makes_a_verified_backup_and_detects_corruption(seeded, tmp_path):
    r = playbook(str(ROOT / "playbooks" / "10_prepare.yml"), "--tags", "backup", *_backup_vars(seeded, tmp_path))
    assert r.returncode == 0, r.stdout[-4000:]
    (backup_dir,) = (tmp_path / "backups").iterdir()
    assert backup_dir.name.startswith("pre-migration-") and backup_dir.stat().st_mode & 0o777 == 0o700

    # the checksum list is sha256sum's format: the real tool agrees
    check = subprocess.run(["sha256sum", "--quiet", "-c", "backup-checksums.txt"], cwd=backup_dir,
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    manifest = json.loads((backup_dir / "backup-manifest.json").read_text())
    expected = backup.collection_counts(seeded.uri, SOURCE_DB)
    assert manifest["collections"] == expected and manifest["collection_count"] == 29
    assert manifest["verified"] == "yes" and manifest["restore_test"] == "passed" and manifest["tool"] == "builtin"
    # the restore test's scratch database was dropped
    assert f"{SOURCE_DB}_restore_test" not in pymongo.MongoClient(seeded.uri).list_database_names()
    # the secondary copy is identical, file for file
    copy = tmp_path / "secondary" / backup_dir.name
    cmp = filecmp.dircmp(backup_dir / SOURCE_DB, copy / SOURCE_DB)
    assert not cmp.left_only and not cmp.right_only and not cmp.diff_files
    _, mismatch, errors = filecmp.cmpfiles(backup_dir / SOURCE_DB, copy / SOURCE_DB, cmp.common_files, shallow=False)
    assert not mismatch and not errors
    baseline = json.loads((tmp_path / "art" / "baseline-counts.json").read_text())
    assert baseline["counts"] == expected and baseline["total"] == sum(expected.values())

    # one flipped byte in one file: the verification task fails and names the file
    victim = backup_dir / SOURCE_DB / "Invoices.bson.gz"
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    verify_play = tmp_path / "verify.yml"
    verify_play.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - name: Recheck the backup\n      mongodb_backup_verify:\n"
        f"        path: {backup_dir}\n        db: {SOURCE_DB}\n        checksums: verify\n")
    r = playbook(str(verify_play))
    assert r.returncode != 0
    assert f"{SOURCE_DB}/Invoices.bson.gz: checksum differs" in r.stdout


def test_backup_fails_when_collections_are_missing(seeded, tmp_path):
    r = playbook(str(ROOT / "playbooks" / "10_prepare.yml"), "--tags", "backup",
                 *_backup_vars(seeded, tmp_path, backup_min_collections=40))
    assert r.returncode != 0 and "the backup holds 29 collections, fewer than the 40 expected" in r.stdout


def test_manifest_redacts_the_password(tmp_path):
    play = tmp_path / "redact.yml"
    play.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - name: Name the backup\n      ansible.builtin.include_role:\n        name: mongodb_backup\n"
        "        tasks_from: prepare.yml\n      vars:\n"
        "        mongodb_backup_uri: mongodb://backup:Sup3r-S3cret@db.example:27017/?authSource=admin\n"
        f"        mongodb_backup_root: {tmp_path / 'b'}\n"
        "    - name: Show\n      ansible.builtin.debug:\n        var: mongodb_backup_uri_redacted\n")
    r = playbook(str(play))
    assert r.returncode == 0, r.stdout[-2000:]
    assert "mongodb://backup:***@db.example:27017/?authSource=admin" in r.stdout
    assert "Sup3r-S3cret" not in r.stdout


def test_archive_phase_is_idempotent_and_its_job_keeps_the_newest(seeded, tmp_path):
    archive = tmp_path / "archive"
    args = ["--tags", "archive", "-e", json.dumps({
        "mongo_uri": seeded.uri, "mongo_db": SOURCE_DB, "archive_dir": str(archive), "artifacts_dir": str(tmp_path),
        "archive_cron_dir": str(archive / "cron.d"), "archive_readonly": False,
        "archive_credentials_file": str(tmp_path / "credentials" / "archive.env"),
        "archive_readonly_unavailable_reason": "test server without users"})]
    first = playbook(str(ROOT / "playbooks" / "70_complete.yml"), *args)
    assert first.returncode == 0, first.stdout[-3000:]
    assert recap(first.stdout)["changed"] > 0
    second = playbook(str(ROOT / "playbooks" / "70_complete.yml"), *args)
    assert second.returncode == 0 and recap(second.stdout)["changed"] == 0, second.stdout[-3000:]

    policy = (archive / "RETENTION-POLICY.md").read_text()
    assert "NOT read-only: test server without users" in policy and "(90 days)" in policy
    cron = (archive / "cron.d" / f"mongo2pg-retention-{SOURCE_DB}").read_text()
    assert f"30 2 * * * root {archive}/retention-backup.sh" in cron
    credentials = tmp_path / "credentials" / "archive.env"
    assert credentials.stat().st_mode & 0o777 == 0o600 and (tmp_path / "credentials").stat().st_mode & 0o777 == 0o700
    assert seeded.uri in credentials.read_text() and str(credentials) in (archive / "retention-backup.sh").read_text()

    script = archive / "retention-backup.sh"
    script.write_text(script.read_text().replace("head -n -7", "head -n -2"))  # keep 2 instead of 7
    for _ in range(3):
        run = subprocess.run([str(script)], capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        subprocess.run(["sleep", "1.1"])
    kept = sorted((archive / "backups").iterdir())
    assert len(kept) == 2 and all(backup.dump_counts(k, SOURCE_DB) == backup.dump_counts(kept[0], SOURCE_DB)
                                  for k in kept)
