"""The target's own faults, for real: PostgreSQL stopped (immediate, as a crash or a provider's failover
does) in the middle of the load and back seconds later. The run rides it out within --retry-seconds and
its tables end identical to an uninterrupted run's."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import psycopg2
from servers import PgServer

from mongo2pg.fixtures.write import write_dump
from mongo2pg.mapping import load_mapping


def _migrate(work, uri, dump, *extra, wait=True):
    cmd = [sys.executable, "-m", "mongo2pg.cli", "migrate", "--dump", str(dump), "--pg-uri", uri, "--quiet",
           "--error-log", str(work / "errors.log"), "--checkpoint-file", str(work / "cp.json"),
           "--progress-file", str(work / "progress.json"), "--summary-file", str(work / "summary.json"), *extra]
    if not wait:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def _tables(uri: str) -> dict[str, str]:
    """Each table's rows, ordered, as one digest: equal digests, identical tables."""
    mapping = load_mapping("nextcrm")
    conn = psycopg2.connect(uri)
    out = {}
    with conn.cursor() as cur:
        for name in [*mapping.tables, *mapping.junctions]:
            cur.execute(f'SELECT count(*), md5(coalesce(string_agg(t::text, \'|\' ORDER BY t::text), \'\')) FROM "{name}" t')
            out[name] = cur.fetchone()
    conn.close()
    return out


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
        pg.pg_ctl("stop", "-m", "immediate")  # as a crash: connections cut, no checkpoint
        time.sleep(8)  # parts start meanwhile: refused, they wait it out too
        pg.pg_ctl("start", "-w", "-o", f"-p {pg.port} -k {pg.base} -c listen_addresses=127.0.0.1")
        out, err = run.communicate(timeout=600)
        assert run.returncode == 0, out[-3000:] + err[-3000:]
        summary = json.loads((tmp_path / "summary.json").read_text())
        assert summary["status"] == "complete"
        assert _tables(uri) == _tables(reference)
    finally:
        pg.stop()
