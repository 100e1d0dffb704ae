"""The target's own faults, for real: PostgreSQL stopped (immediate, as a crash or a provider's failover
does) in the middle of the load and back seconds later. The run rides it out within --retry-seconds and
its tables end identical to an uninterrupted run's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg2
import pytest
from servers import PgServer, table_digests

from mongo2pg.fixtures.write import write_dump


def _migrate(work, uri, dump, *extra, wait=True):
    cmd = [sys.executable, "-m", "mongo2pg.cli", "migrate", "--dump", str(dump), "--pg-uri", uri, "--quiet",
           "--error-log", str(work / "errors.log"), "--checkpoint-file", str(work / "cp.json"),
           "--progress-file", str(work / "progress.json"), "--summary-file", str(work / "summary.json"), *extra]
    if not wait:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def test_the_target_restarted_mid_load_is_ridden_out_and_the_tables_equal_an_uninterrupted_runs(tmp_path):
    dump = tmp_path / "dump"
    write_dump(dump, scale=0.05, seed=11)
    pg = PgServer().start()
    try:
        reference = pg.create_db("reference")
        first = tmp_path / "reference"
        first.mkdir()
        assert _migrate(first, reference, dump, "--workers", "2").returncode == 0
        uri = pg.create_db("restarted")
        run = _migrate(tmp_path, uri, dump, "--workers", "2", "--retry-seconds", "120", wait=False)
        progress = tmp_path / "progress.json"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and run.poll() is None:
            time.sleep(0.2)
            try:
                tables = json.loads(progress.read_text()).get("tables", {})
            except (OSError, ValueError):
                continue
            if sum(t.get("position", 0) for t in tables.values()) > 10_000:
                break
        assert run.poll() is None, "the load finished before the fault: give it more documents"
        pg.crash()  # as a crash: connections cut, no checkpoint
        time.sleep(8)  # parts start meanwhile: refused, they wait it out too
        pg.start_again()
        out, err = run.communicate(timeout=600)
        assert run.returncode == 0, out[-3000:] + err[-3000:]
        summary = json.loads((tmp_path / "summary.json").read_text())
        assert summary["status"] == "complete"
        assert table_digests(uri) == table_digests(reference)
    finally:
        pg.stop()


def _mount_small_fs(where, size: str) -> bool:
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)],
                          capture_output=True).returncode == 0


def test_the_targets_disk_filling_mid_load_is_one_line_and_the_rerun_after_room_is_made_resumes_exactly(tmp_path):
    """PostgreSQL's data directory on a small file system of its own (tmpfs), filled by the load: the run
    ends with one line saying the disk is full and the checkpoint holds; once the file system is grown
    (remount), the server started if it had to stop, the rerun completes and its tables equal an
    uninterrupted run's."""
    small = Path(tempfile.mkdtemp(prefix="m2p-small-"))  # outside tmp_path: the postgres user must reach it
    small.chmod(0o755)
    if os.geteuid() != 0 or not _mount_small_fs(small, "64m"):
        pytest.skip("needs root to mount a small file system (tmpfs) for the data directory")
    dump = tmp_path / "dump"
    write_dump(dump, scale=0.05, seed=11)
    ref = PgServer().start()
    pg = PgServer(parent=small)
    try:
        reference = ref.create_db("reference")
        first = tmp_path / "reference"
        first.mkdir()
        assert _migrate(first, reference, dump).returncode == 0
        pg.start()
        uri = pg.create_db("full")
        run = _migrate(tmp_path, uri, dump, "--retry-seconds", "15")
        err = run.stderr.strip()
        assert run.returncode == 1 and len(err.splitlines()) == 1, run.stdout[-2000:] + err[-3000:]
        # the guard on free disk stopping it first, or the disk full when the server went away
        assert ("free disk on the target's data directory" in err or "its disk is full" in err) and "rerun" in err, err
        assert "Traceback" not in err and pg.password not in err
        subprocess.run(["mount", "-o", "remount,size=1g", str(small)], check=True)
        if pg._run(str(pg.bindir / "pg_ctl"), "-D", str(pg.datadir), "status", check=False).returncode != 0:
            pg.start_again()
        again = _migrate(tmp_path, uri, dump)
        assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-3000:]
        assert table_digests(uri) == table_digests(reference)
    finally:
        pg.stop()
        ref.stop()
        subprocess.run(["umount", "-l", str(small)], capture_output=True)
        small.rmdir()


def test_validation_rides_out_the_target_restarting_under_it(tmp_path):
    """PostgreSQL stopped (immediate) while validation reads it and back 5 s later: each table's check and
    the database's checks start again on a new connection, and the report is the uninterrupted PASS."""
    dump = tmp_path / "dump"
    write_dump(dump, scale=0.2, seed=5)
    pg = PgServer().start()
    try:
        uri = pg.create_db("validated")
        assert _migrate(tmp_path, uri, dump).returncode == 0
        cmd = [sys.executable, "-m", "mongo2pg.cli", "validate", "--dump", str(dump), "--pg-uri", uri, "--error-log",
               str(tmp_path / "errors.log"), "--report", str(tmp_path / "report.json"), "--retry-seconds", "60"]
        run = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.5)
        assert run.poll() is None, "validation ended before the fault: give it more documents"
        pg.crash()
        time.sleep(5)
        pg.start_again()
        out, err = run.communicate(timeout=600)
        report = json.loads((tmp_path / "report.json").read_text())
        assert run.returncode == 0 and report["overallStatus"] == "PASS", out[-3000:] + err[-3000:]
        assert "connection lost" in err and "retrying" in err, err[-3000:]
    finally:
        pg.stop()


def test_the_target_restarting_while_the_run_prepares_is_ridden_out(tmp_path):
    """Before the load (schema, state, the plan) the run's own session is the one that holds the one-run
    lock: held up there by a session locking the run's state table, then the target stopped (immediate)
    and started again, the run takes a new session and the lock again and completes, tables as before."""
    dump = tmp_path / "dump"
    write_dump(dump, scale=0.02, seed=3)
    pg = PgServer().start()
    try:
        uri = pg.create_db("preparing")
        assert _migrate(tmp_path, uri, dump).returncode == 0
        before = table_digests(uri)
        holder = psycopg2.connect(uri, application_name="forgotten-psql")
        with holder.cursor() as cur:
            cur.execute("LOCK TABLE mongo2pg.run IN ACCESS EXCLUSIVE MODE")
        run = _migrate(tmp_path, uri, dump, "--fresh", "--retry-seconds", "60", "--on-hang", "report", wait=False)
        time.sleep(3)
        assert run.poll() is None, "the run did not wait on the held lock"
        pg.crash()
        time.sleep(2)
        pg.start_again()
        out, err = run.communicate(timeout=600)
        assert run.returncode == 0, out[-3000:] + err[-3000:]
        assert table_digests(uri) == before
    finally:
        pg.stop()
