"""The runbook's real-time decision tree (6.2 step 4) in the engine, each branch with a real fault:
an error rate over 1% (a HIGH line with the top reasons), workers paused with SIGSTOP (reported hung and
stopped, checkpointed), and a memory cgroup with little left (stopped, checkpointed, with the hint)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg2
import pytest
from bson import ObjectId
from large_docs import LARGE_DOCUMENTS_MAPPING, write_large_documents

from mongo2pg.source import dumpfmt

CGROUP_V1 = Path("/sys/fs/cgroup/memory")

NOTES = """
version: 1
name: notes
tables:
  notes:
    collection: notes
    columns:
      - {name: id, source: _id, type: uuid, primary_key: true}
      - {name: title, type: text, required: true}
      - {name: n, type: integer}
"""


def _cli(work: Path, *args: str, wrapper: list[str] | None = None, wait: bool = True, timeout: float = 600):
    cmd = [*(wrapper or []), sys.executable, "-m", "mongo2pg.cli", "migrate", *args,
           "--error-log", str(work / "errors.log"), "--checkpoint-file", str(work / "cp.json"),
           "--progress-file", str(work / "progress.json"), "--summary-file", str(work / "summary.json")]
    if not wait:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def _count(uri: str, table: str) -> int:
    conn = psycopg2.connect(uri)
    with conn.cursor() as cur:
        cur.execute(f'SELECT count(*) FROM "{table}"')
        n = cur.fetchone()[0]
    conn.close()
    return n


def test_an_error_rate_over_one_percent_gives_a_high_line_with_the_top_reasons(tmp_path, pg_db):
    (tmp_path / "m.yml").write_text(NOTES)
    docs = [{"_id": ObjectId(f"{i + 1:024x}"), "title": f"t{i}", "n": i} for i in range(1000)]
    for d in docs[::50]:  # 2% missing their required title, 1% an integer out of range
        del d["title"]
    for d in docs[7::100]:
        d["n"] = 2**40
    dumpfmt.DumpWriter(tmp_path / "dump", "nextcrm").write_collection("notes", docs)
    r = _cli(tmp_path, "--dump", str(tmp_path / "dump"), "--pg-uri", pg_db, "--mapping", str(tmp_path / "m.yml"),
             "--batch-size", "200")
    assert r.returncode == 0, r.stderr
    high = [line for line in r.stderr.splitlines() if "HIGH error rate" in line]
    assert len(high) == 1, r.stderr
    assert "notes:" in high[0] and "missing_required" in high[0] and "int_out_of_range" in high[0]
    assert "It stops at 5%" in high[0]
    progress = json.loads((tmp_path / "progress.json").read_text())
    assert any("HIGH error rate" in w for w in progress["warnings"])


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _records_done(work: Path) -> int:
    try:
        return json.loads((work / "progress.json").read_text())["records_done"]
    except (OSError, ValueError, KeyError):
        return 0


@pytest.fixture(scope="module")
def large_dump(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("large")
    write_large_documents(out / "dump", 240, 1 << 20)
    (out / "blobs.yml").write_text(LARGE_DOCUMENTS_MAPPING)
    return out


@pytest.mark.slow
def test_paused_workers_are_reported_hung_and_stopped_and_the_rerun_resumes(tmp_path, pg_db, large_dump):
    args = ("--dump", str(large_dump / "dump"), "--pg-uri", pg_db, "--mapping", str(large_dump / "blobs.yml"),
            "--workers", "2", "--split-documents", "100", "--batch-size", "4", "--hang-seconds", "3")
    run = _cli(tmp_path, *args, wait=False)
    deadline = time.monotonic() + 120
    while _records_done(tmp_path) < 8 and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    workers = _children(run.pid)
    assert len(workers) == 2 and run.poll() is None, run.communicate()[1][-2000:] if run.poll() is not None else workers
    for pid in workers:
        os.kill(pid, signal.SIGSTOP)  # both loaders frozen mid-range: no batch, no event
    out, err = run.communicate(timeout=120)
    assert run.returncode == 1, err
    line = err.strip().splitlines()[-1]
    assert "HUNG: no progress for" in line and "stopped (on_hang: stop), checkpointed" in line
    assert all(f"pid {pid} stopped" in line for pid in workers) and "pg_stat_activity" in line
    assert not any(Path(f"/proc/{pid}").exists() and "T" in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1][:3]
                   for pid in workers)  # none left frozen, holding the target's lock
    r = _cli(tmp_path, *args[:-2])
    assert r.returncode == 0, r.stderr
    assert _count(pg_db, "blobs") == 240


@pytest.mark.slow
@pytest.mark.skipif(not (CGROUP_V1 / "cgroup.procs").exists() or os.geteuid() != 0,
                    reason="needs root and the cgroup v1 memory controller to make a small memory cgroup")
def test_a_host_short_of_memory_stops_checkpointed_with_the_hint_and_the_rerun_resumes(tmp_path, pg_db, large_dump):
    """The run inside a real memory cgroup of 600 MB: its three processes use more than a tenth of it (two
    loaders with 16 MB batches of ~1 MB documents), so with --min-free-memory 0.9 the guard trips after a
    batch. (At the limit itself the kernel would stall or kill the run, with nothing checkpointed.) Raw
    batches and COPY as bytes took the run under a quarter, where 0.75 used to trip it."""
    group = CGROUP_V1 / f"m2p-test-{uuid.uuid4().hex[:8]}"
    group.mkdir()
    try:
        (group / "memory.limit_in_bytes").write_text(str(600 << 20))
        args = ("--dump", str(large_dump / "dump"), "--pg-uri", pg_db, "--mapping", str(large_dump / "blobs.yml"),
                "--workers", "2", "--split-documents", "100")
        wrapper = ["sh", "-c", f'echo $$ > {group}/cgroup.procs && exec "$@"', "m2p"]
        r = _cli(tmp_path, *args, "--quiet", "--min-free-memory", "0.9", wrapper=wrapper, timeout=180)
        assert r.returncode == 1, r.stderr
        assert "available memory on the migration host is" in r.stderr and "(< 90%); checkpointed" in r.stderr
        assert "lower --batch-size / --batch-bytes or --workers" in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    finally:
        for pid in (group / "cgroup.procs").read_text().split():
            os.kill(int(pid), signal.SIGKILL)
        for _ in range(50):
            try:
                group.rmdir()
                break
            except OSError:
                time.sleep(0.1)
    r = _cli(tmp_path, *args)
    assert r.returncode == 0, r.stderr
    assert _count(pg_db, "blobs") == 240


def _locked_notes(tmp_path, pg_db, n: int = 3000):
    """A dump of `n` notes, their table made, and another session (a forgotten psql) holding ACCESS
    EXCLUSIVE on it in an open transaction."""
    (tmp_path / "m.yml").write_text(NOTES)
    dumpfmt.DumpWriter(tmp_path / "dump", "app").write_collection(
        "notes", iter({"_id": ObjectId(f"{i + 1:024x}"), "title": f"t{i}", "n": i} for i in range(n)))
    made = subprocess.run([sys.executable, "-m", "mongo2pg.cli", "schema", "apply", "--mapping", str(tmp_path / "m.yml"),
                           "--pg-uri", pg_db], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    holder = psycopg2.connect(pg_db, application_name="forgotten-psql")
    pid = holder.get_backend_pid()
    with holder.cursor() as cur:
        cur.execute("LOCK TABLE notes IN ACCESS EXCLUSIVE MODE")
    return holder, pid, ["--dump", str(tmp_path / "dump"), "--db", "app", "--mapping", str(tmp_path / "m.yml"),
                         "--pg-uri", pg_db, "--workers", "1", "--quiet"]


def test_a_session_holding_a_lock_is_named_and_the_run_stops_at_the_hang_window(tmp_path, pg_db):
    holder, pid, args = _locked_notes(tmp_path, pg_db)
    started = time.monotonic()
    r = _cli(tmp_path, *args, "--hang-seconds", "8", "--on-hang", "stop", timeout=120)
    waited = time.monotonic() - started
    holder.rollback()
    assert r.returncode == 1 and waited < 40, (waited, r.stderr)
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr
    for part in (f"pid {pid}", "application forgotten-psql", "idle in transaction", "LOCK TABLE notes",
                 f"pg_terminate_backend({pid})", "checkpointed"):
        assert part in r.stderr, (part, r.stderr)
    warnings = json.loads((tmp_path / "progress.json").read_text())["warnings"]
    assert any(w.startswith("WAITING") and f"pid {pid}" in w for w in warnings), warnings  # named before the stop
    again = _cli(tmp_path, *args)
    assert again.returncode == 0, again.stderr
    assert _count(pg_db, "notes") == 3000
    holder.close()


def test_under_on_hang_report_the_blocker_is_named_and_the_run_waits_for_it(tmp_path, pg_db):
    holder, pid, args = _locked_notes(tmp_path, pg_db)
    run = _cli(tmp_path, *args, "--hang-seconds", "4", "--on-hang", "report", wait=False)
    progress = tmp_path / "progress.json"
    deadline = time.monotonic() + 60
    named = []
    while not named and time.monotonic() < deadline:
        time.sleep(0.5)
        if progress.exists():
            named = [w for w in json.loads(progress.read_text()).get("warnings", []) if f"pid {pid}" in w]
    time.sleep(5)  # past the hang window: it keeps waiting
    assert named and run.poll() is None, (named, run.poll())
    holder.rollback()  # the session ends its transaction: the run goes on by itself
    out, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    assert _count(pg_db, "notes") == 3000
    holder.close()
