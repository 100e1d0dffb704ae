#!/usr/bin/env python3
"""make bench-peers: ours against dlt on the same documents, the same server, in the same run.

The server is make bench's: the postgresql role's settings for this host with the runbook's durability
on. The documents: the NextCRM sample dump at --scale (default 1: the runbook's 1,254,390 records, in
29 collections; a smaller scale measures mostly the fixed costs of starting and finishing). dlt (pinned
in scripts/peers/requirements.txt, in .cache/peers-venv) loads every collection the way its
documentation shows (scripts/peers/dlt_load.py: one resource per collection, its postgres destination,
its fastest loader, csv (COPY); --loaders csv,insert_values adds its default one, ~9% slower here);
ours migrates the same dump end to end (junctions, indexes, foreign keys, ANALYZE). Prints documents/s
of each and the ratio, with the target (ours >= 10x dlt's fastest). About 4 minutes at scale 1.

    python scripts/bench_peers.py [--scale F] [--loaders csv,insert_values]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "scripts"))

from bench import DURABLE, dump_for, migrate, production_settings  # noqa: E402
from servers import PgServer  # noqa: E402

PEERS_VENV = ROOT / ".cache" / "peers-venv"
TARGET = 10.0


def peers_python() -> Path:
    """The peers' venv, made once from the pinned requirements (and again when they change)."""
    python, stamp = PEERS_VENV / "bin" / "python", PEERS_VENV / "requirements.txt"
    wanted = (ROOT / "scripts" / "peers" / "requirements.txt").read_text()
    if not python.exists() or not stamp.exists() or stamp.read_text() != wanted:
        print(f"bench-peers: installing the pinned peers into {PEERS_VENV} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(PEERS_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "-r",
                        str(ROOT / "scripts" / "peers" / "requirements.txt")], check=True)
        stamp.write_text(wanted)
    return python


def dlt_seconds(python: Path, dump: Path, uri: str, loader: str) -> float:
    env = {**os.environ, "RUNTIME__LOG_LEVEL": "ERROR"}
    r = subprocess.run([str(python), str(ROOT / "scripts" / "peers" / "dlt_load.py"), str(dump / "nextcrm"), uri,
                        loader], capture_output=True, text=True, env=env)
    if r.returncode:
        raise SystemExit(f"bench-peers: dlt failed ({loader}):\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])["seconds"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=1.0, help="sample-data scale of the shared dump (default 1)")
    ap.add_argument("--loaders", default="csv", help="dlt loaders to run, comma-separated (default csv, its fastest; "
                    "also: insert_values)")
    args = ap.parse_args()
    loaders = [x.strip() for x in args.loaders.split(",") if x.strip()]
    unknown = set(loaders) - {"csv", "insert_values"}
    if unknown or not loaders:
        ap.error(f"--loaders: csv and/or insert_values, not {', '.join(sorted(unknown)) or 'nothing'}")
    python = peers_python()
    dump = dump_for(args.scale)
    work = ROOT / ".cache" / "bench-peers"
    work.mkdir(parents=True, exist_ok=True)
    pg = PgServer(settings={**production_settings(), **DURABLE}).start()
    try:
        ours = migrate(pg, dump, work, "ours")
        docs = ours["docs"]
        rates = {}
        for loader in loaders:
            uri = pg.create_db(f"dlt_{loader}")
            started = time.monotonic()
            seconds = dlt_seconds(python, dump, uri, loader)
            rates[loader] = docs / seconds
            print(f"dlt 1.31.0 ({loader} loader): {docs:,} documents in {seconds:.1f}s (its pipeline.run; "
                  f"{time.monotonic() - started:.1f}s with its process) -> {rates[loader]:,.0f} documents/s",
                  flush=True)
            pg.drop_db(f"dlt_{loader}")
    finally:
        pg.stop()
    ours_rate = docs / ours["wall"]
    best = max(rates, key=rates.get)
    ratio = ours_rate / rates[best]
    print(f"ours: {ours_rate:,.0f} documents/s end to end (junctions, indexes, foreign keys, ANALYZE) against dlt's "
          f"fastest ({best}) {rates[best]:,.0f}: x{ratio:.1f}")
    print(f"target ours >= {TARGET:g}x dlt: {'met' if ratio >= TARGET else 'NOT met'} (x{ratio:.1f}) [durable, as production]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
