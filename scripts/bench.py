#!/usr/bin/env python3
"""make bench: migrate and validate the --scale 1 NextCRM data (1,254,390 documents) and print figures.

Prints wall seconds, documents/s, rows/s, peak RSS of the migration, the ratio to a raw COPY of the
same final rows measured in the same run, and validation rows/s. Figures vary with the machine's
load: compare ratios measured in one run, not absolute numbers across runs.
"""

from __future__ import annotations

import io
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import psycopg2  # noqa: E402
from servers import PgServer  # noqa: E402

from mongo2pg.mapping import load_mapping  # noqa: E402


def main() -> int:
    scale = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    cache = ROOT / ".cache" / f"scale{scale:g}"
    if not (cache / "sample-data-manifest.json").exists():
        print(f"bench: generating the scale-{scale:g} dump once into {cache} ...", flush=True)
        # In a child process: generating in this one would grow it, and every measured child forked
        # from it would start with that memory counted in its peak RSS.
        subprocess.run([sys.executable, "-m", "mongo2pg.cli", "sample-data", "--scale", f"{scale:g}", "--seed", "1",
                        "--out-dump", str(cache)], check=True, stdout=subprocess.DEVNULL)
    pg = PgServer().start()
    try:
        uri = pg.create_db("bench")
        work = ROOT / ".cache" / "bench"
        work.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        r = subprocess.run([sys.executable, "-m", "mongo2pg.cli", "migrate", "--dump", str(cache), "--pg-uri", uri,
                            "--quiet", "--fresh", "--error-log", str(work / "errors.log"), "--checkpoint-file",
                            str(work / "cp.json"), "--summary-file", str(work / "summary.json")],
                           capture_output=True, text=True)
        wall = time.monotonic() - t0
        if r.returncode != 0:
            print(r.stdout[-3000:], r.stderr[-3000:])
            return 1
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        summary = json.loads((work / "summary.json").read_text())
        docs = summary["totals"]["source"]
        rows = summary["totals"]["loaded"] + summary["totals"]["junction_rows"]
        raw = raw_copy_seconds(pg, uri)
        t1 = time.monotonic()
        v = subprocess.run([sys.executable, "-m", "mongo2pg.cli", "validate", "--dump", str(cache), "--pg-uri", uri,
                            "--error-log", str(work / "errors.log"), "--report", str(work / "report.json")],
                           capture_output=True, text=True)
        vwall = time.monotonic() - t1
        report = json.loads((work / "report.json").read_text())
        print(f"migration: {docs:,} documents, {rows:,} rows in {wall:.1f}s wall -> {docs / wall:,.0f} documents/s, "
              f"{rows / wall:,.0f} rows/s; peak RSS (largest process) {peak_mb:,.0f} MB")
        print(f"raw COPY of the same final rows (text, no transform, same server): {raw:.1f}s -> "
              f"ratio raw/ours = {raw / wall:.2f}")
        print(f"validation ({report['overallStatus']}, every row): {report['rowsChecked']:,} rows in {vwall:.1f}s -> "
              f"{report['rowsChecked'] / vwall:,.0f} rows/s (exit {v.returncode})")
        print(f"runbook baseline: 13.27 records/s migration -> speed-up x{docs / wall / 13.27:,.0f}")
    finally:
        pg.stop()
    return 0


def raw_copy_seconds(pg: PgServer, uri: str) -> float:
    """COPY every final row out to memory, then time COPY-ing it into an empty copy of the schema."""
    mapping = load_mapping("nextcrm")
    target = pg.create_db("bench_raw")
    src = psycopg2.connect(uri)
    dst = psycopg2.connect(target)
    from mongo2pg import schema

    schema.apply(dst, mapping)
    buffers = {}
    with src.cursor() as cur:
        for name in list(mapping.tables) + list(mapping.junctions):
            buf = io.StringIO()
            cur.copy_expert(f'COPY "{name}" TO STDOUT', buf)
            buffers[name] = buf.getvalue()
    t0 = time.monotonic()
    with dst.cursor() as cur:
        for name, data in buffers.items():
            cur.copy_expert(f'COPY "{name}" FROM STDIN', io.StringIO(data))
    dst.commit()
    schema.finalize(dst, mapping)
    elapsed = time.monotonic() - t0
    src.close()
    dst.close()
    return elapsed


if __name__ == "__main__":
    sys.exit(main())
