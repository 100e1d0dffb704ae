#!/usr/bin/env python3
"""make bench: migrate and validate the NextCRM sample data and print figures, all measured in one run.

At scale 1 (1,254,390 documents): wall seconds, documents/s, rows/s and peak RSS of the migration
(junctions, indexes, foreign keys and ANALYZE included), the ratio to a raw COPY of the same final
rows (+ the same indexes and foreign keys) into the same server, and validation rows/s (every row).
At scale 4 (5,017,560 documents): the migration again, for its peak RSS against scale 1's.
Figures vary with the machine's load: compare the ratios measured in one run, not numbers across runs.

    python scripts/bench.py [SCALE ...]     (default: 1 4; the first scale gets the full figures)
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import psycopg2  # noqa: E402
from large_docs import LARGE_DOCUMENTS_MAPPING, write_large_documents  # noqa: E402
from peak import mongo2pg_measured  # noqa: E402
from servers import PgServer  # noqa: E402

from mongo2pg import schema  # noqa: E402
from mongo2pg.connect import BULK_SESSION, pg_connect  # noqa: E402
from mongo2pg.mapping import load_mapping  # noqa: E402
from mongo2pg.migration import Options  # noqa: E402

TARGETS = {"documents/s": 50_000, "raw/ours": 0.5, "peak MB": 500, "RSS growth": 0.20, "validation rows/s": 100_000,
           "large-document peak MB": 500}
AT_MOST = ("peak MB", "RSS growth", "large-document peak MB")


def dump_for(scale: float) -> Path:
    cache = ROOT / ".cache" / f"scale{scale:g}"
    if not (cache / "sample-data-manifest.json").exists():
        print(f"bench: generating the scale-{scale:g} dump once into {cache} ...", flush=True)
        subprocess.run([sys.executable, "-m", "mongo2pg.cli", "sample-data", "--scale", f"{scale:g}", "--seed", "1",
                        "--out-dump", str(cache)], check=True, stdout=subprocess.DEVNULL)
    return cache


def measured(args: list[str]) -> tuple[float, float, subprocess.CompletedProcess]:
    """(wall seconds, peak RSS in MB, the finished process) of `mongo2pg ARGS`."""
    t0 = time.monotonic()
    r, peak = mongo2pg_measured(*args)
    wall = time.monotonic() - t0
    if r.returncode not in (0, 1):
        raise SystemExit(f"bench: mongo2pg {args[0]} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return wall, peak, r


def migrate(pg: PgServer, dump: Path, work: Path, name: str) -> dict:
    uri = pg.create_db(name)
    wall, peak, _ = measured(["migrate", "--dump", str(dump), "--pg-uri", uri, "--quiet", "--fresh", "--error-log",
                              str(work / "errors.log"), "--checkpoint-file", str(work / "cp.json"),
                              "--summary-file", str(work / "summary.json")])
    totals = json.loads((work / "summary.json").read_text())["totals"]
    docs, rows = totals["source"], totals["loaded"] + totals["junction_rows"]
    print(f"migration {name}: {docs:,} documents, {rows:,} rows in {wall:.1f}s wall -> {docs / wall:,.0f} documents/s, "
          f"{rows / wall:,.0f} rows/s; peak RSS (largest process) {peak:,.0f} MB", flush=True)
    return {"uri": uri, "docs": docs, "wall": wall, "peak": peak}


def main() -> int:
    scales = [float(a) for a in sys.argv[1:]] or [1.0, 4.0]
    work = ROOT / ".cache" / "bench"
    work.mkdir(parents=True, exist_ok=True)
    dumps = [dump_for(s) for s in scales]
    pg = PgServer().start()
    try:
        first = migrate(pg, dumps[0], work, f"scale{scales[0]:g}")
        raw = raw_copy_seconds(pg, first["uri"])
        ratio = raw / first["wall"]
        print(f"raw COPY of the same final rows + the same indexes and foreign keys (text, no transform, same "
              f"server): {raw:.1f}s -> ratio raw/ours = {ratio:.2f}", flush=True)
        vwall, vpeak, v = measured(["validate", "--dump", str(dumps[0]), "--pg-uri", first["uri"], "--error-log",
                                    str(work / "errors.log"), "--report", str(work / "report.json")])
        report = json.loads((work / "report.json").read_text())
        vrate = report["rowsChecked"] / vwall
        print(f"validation ({report['overallStatus']}, every row, five layers): {report['rowsChecked']:,} rows in "
              f"{vwall:.1f}s -> {vrate:,.0f} rows/s; peak RSS {vpeak:,.0f} MB (exit {v.returncode})", flush=True)
        print(f"runbook baseline: 13.27 records/s migration -> speed-up x{first['docs'] / first['wall'] / 13.27:,.0f}")
        figures = {"documents/s": first["docs"] / first["wall"], "raw/ours": ratio, "peak MB": first["peak"],
                   "validation rows/s": vrate}
        for scale, dump in zip(scales[1:], dumps[1:], strict=True):
            more = migrate(pg, dump, work, f"scale{scale:g}")
            growth = more["peak"] / first["peak"] - 1
            print(f"peak RSS scale {scales[0]:g} -> {scale:g}: {first['peak']:,.0f} -> {more['peak']:,.0f} MB "
                  f"({growth:+.0%} for {more['docs'] / first['docs']:.1f}x the documents)", flush=True)
            figures["RSS growth"] = growth
            figures["peak MB"] = max(figures["peak MB"], more["peak"])
        figures["large-document peak MB"] = large_documents(pg, work)
        for key, target in TARGETS.items():
            if key in figures:
                ok = figures[key] <= target if key in AT_MOST else figures[key] >= target
                print(f"target {key}: {'met' if ok else 'NOT met'} ({figures[key]:,.2f} vs "
                      f"{'at most' if key in AT_MOST else 'at least'} {target:,})")
    finally:
        pg.stop()
    return 0


def large_documents(pg: PgServer, work: Path) -> float:
    """1,000 consecutive documents of about 1 MB: migrate and validate, each process's peak RSS."""
    dump = ROOT / ".cache" / "large-documents"
    if not (dump / "nextcrm" / "blobs.bson").exists():
        write_large_documents(dump, 1000, 1 << 20)
    (work / "blobs.yml").write_text(LARGE_DOCUMENTS_MAPPING)
    uri = pg.create_db("bench_large")
    common = ["--dump", str(dump), "--pg-uri", uri, "--mapping", str(work / "blobs.yml"), "--error-log",
              str(work / "large-errors.log")]
    mwall, mpeak, _ = measured(["migrate", *common, "--quiet", "--fresh", "--checkpoint-file", str(work / "large.json")])
    vwall, vpeak, _ = measured(["validate", *common, "--report", str(work / "large-report.json")])
    mb = sum(p.stat().st_size for p in (dump / "nextcrm").iterdir()) / 1e6
    print(f"large documents (1,000 x ~1 MB, {mb:,.0f} MB of BSON): migration {mwall:.1f}s ({mb / mwall:,.1f} MB/s), "
          f"peak RSS {mpeak:,.0f} MB; validation {vwall:.1f}s, peak RSS {vpeak:,.0f} MB", flush=True)
    pg.drop_db("bench_large")
    return max(mpeak, vpeak)


def raw_copy_seconds(pg: PgServer, uri: str) -> float:
    """COPY every final row out to memory, then time COPY-ing it into an empty copy of the schema and
    building the same indexes and foreign keys the same way (schema.finalize, side by side)."""
    mapping = load_mapping("nextcrm")
    target = pg.create_db("bench_raw")
    src = psycopg2.connect(uri)
    dst = psycopg2.connect(target)
    schema.apply(dst, mapping)
    buffers = {}
    with src.cursor() as cur:
        for name in list(mapping.tables) + list(mapping.junctions):
            buf = io.StringIO()
            cur.copy_expert(f'COPY "{name}" TO STDOUT', buf)
            buffers[name] = buf.getvalue()
    src.close()
    t0 = time.monotonic()
    with dst.cursor() as cur:
        for name, data in buffers.items():
            cur.copy_expert(f'COPY "{name}" FROM STDIN', io.StringIO(data))
    dst.commit()
    schema.finalize(dst, mapping, connect=lambda: pg_connect(target, settings=BULK_SESSION),
                    workers=Options(pg_uri=target).worker_count())
    elapsed = time.monotonic() - t0
    dst.close()
    pg.drop_db("bench_raw")  # not part of what is measured next (its autovacuum would run beside it)
    return elapsed


if __name__ == "__main__":
    sys.exit(main())
