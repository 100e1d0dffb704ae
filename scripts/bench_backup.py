#!/usr/bin/env python3
"""make bench-backup: restore and dump the NextCRM sample data through a real MongoDB wire server.

For a small and the full scale, prints documents/s and the peak RSS of each `mongo2pg restore` and
`mongo2pg dump` process: memory must stay flat as the data grows (both stream raw BSON).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from servers import MongoServer  # noqa: E402

CLI = [sys.executable, "-m", "mongo2pg.cli"]


def run_measured(args: list[str]) -> tuple[float, float]:
    """Run a command; return (wall seconds, peak RSS in MB of that process alone)."""
    t0 = time.monotonic()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"bench-backup: {' '.join(args[2:4])} failed: {proc.stderr.read().decode()[-2000:]}")
    return wall, usage.ru_maxrss / 1024


def main() -> int:
    scales = [float(s) for s in sys.argv[1:]] or [0.25, 1.0]
    mongo = MongoServer().start()
    try:
        rows = []
        for scale in scales:
            dump = ROOT / ".cache" / f"scale{scale:g}"
            if not (dump / "sample-data-manifest.json").exists():
                print(f"bench-backup: generating the scale-{scale:g} dump once into {dump} ...", flush=True)
                # In a child process: generating in this one would grow it, and every measured child forked
                # from it would start with that memory counted in its peak RSS.
                subprocess.run([sys.executable, "-m", "mongo2pg.cli", "sample-data", "--scale", f"{scale:g}", "--seed", "1",
                                "--out-dump", str(dump)], check=True, stdout=subprocess.DEVNULL)
            docs = json.loads((dump / "sample-data-manifest.json").read_text())["total"]
            db = f"bench_{str(scale).replace('.', '_')}"
            restore_s, restore_mb = run_measured([*CLI, "restore", "--dump", str(dump), "--mongo-uri", mongo.uri,
                                                  "--target-db", db, "--drop"])
            out = ROOT / ".cache" / "bench-backup"
            shutil.rmtree(out, ignore_errors=True)
            dump_s, dump_mb = run_measured([*CLI, "dump", "--mongo-uri", mongo.uri, "--db", db, "--out", str(out),
                                            "--gzip"])
            rows.append((scale, docs, restore_s, restore_mb, dump_s, dump_mb))
            print(f"scale {scale:g}: {docs:,} documents; restore {restore_s:.1f}s ({docs / restore_s:,.0f} docs/s, "
                  f"peak RSS {restore_mb:.0f} MB); dump {dump_s:.1f}s ({docs / dump_s:,.0f} docs/s, "
                  f"peak RSS {dump_mb:.0f} MB)", flush=True)
        if len(rows) > 1:
            (s0, d0, _, r0, _, m0), (s1, d1, _, r1, _, m1) = rows[0], rows[-1]
            print(f"memory growth from scale {s0:g} to {s1:g} ({d1 / d0:.0f}x the documents): restore "
                  f"{(r1 / r0 - 1):+.0%}, dump {(m1 / m0 - 1):+.0%}")
    finally:
        mongo.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
