#!/usr/bin/env python3
"""make bench-online (and the end of make bench): the online migration's figures on a PostgreSQL configured
as production (the postgresql role's settings, durability on), the source a live nx-27017 server.

1. The catch-up's speed: a backlog of 10,000 changed documents (creates, updates, deletes, link adds and
   removes) drained by `mongo2pg online apply` (target: under 10 s).
2. The engine's part of the maintenance window at two scales under the same steady write load during the
   bulk and the catch-up: from the service's stop (the drain's start) to validated and ready to switch
   (the cutover, then `mongo2pg validate --since` the full pass made while the app wrote): target at most
   10 s at the first scale, the second within +20% of
   it (it must not grow with the data). The issue's scales are 1 and 4 (1.25 and 5 million documents);
   --scales sets them (loading nx-27017 at scale 4 takes long), and the figures say which were run.

    python scripts/bench_online.py [--scales 1 4] [--rate 50] [--backlog 10000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "scripts"))

import pymongo  # noqa: E402
from bench import DURABLE, cpu_calibration, production_settings  # noqa: E402
from servers import MongoServer, PgServer  # noqa: E402

from mongo2pg.fixtures.app_writes import AppWrites  # noqa: E402
from mongo2pg.fixtures.write import write_live  # noqa: E402

WINDOW_TARGET, GROWTH_TARGET, BACKLOG_TARGET = 10.0, 0.20, 10.0


def engine(*args: str, env: dict | None = None, ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "mongo2pg", *args], capture_output=True, text=True, env=env)
    if r.returncode not in ok:
        raise SystemExit(f"bench-online: mongo2pg {args[0]} {args[1] if len(args) > 1 else ''} failed:\n"
                         f"{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return r


def wait_caught_up(status_file: Path, most: int = 200, timeout: float = 3600) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            st = json.loads(status_file.read_text())
        except (FileNotFoundError, ValueError):
            st = {}
        if st.get("state") == "failed":
            raise SystemExit(f"bench-online: the service failed: {st.get('error')}")
        if st.get("bulk_complete") and st.get("documents_waiting", most + 1) <= most:
            return st
        time.sleep(1)
    raise SystemExit("bench-online: the catch-up did not catch up")


def window_at(scale: float, pg: PgServer, rate: float, work: Path) -> dict:
    mongo = MongoServer().start()
    try:
        client = pymongo.MongoClient(mongo.uri)
        t0 = time.monotonic()
        write_live(client, db="nextcrm", scale=scale, seed=1)
        print(f"  scale {scale:g}: source written in {time.monotonic() - t0:.0f} s", flush=True)
        uri = pg.create_db(f"online_{str(scale).replace('.', '_')}")
        folder = work / f"scale{scale:g}"
        folder.mkdir(parents=True, exist_ok=True)
        files = ["--pid-file", str(folder / "pid"), "--log-file", str(folder / "log"),
                 "--status-file", str(folder / "status.json"), "--error-log", str(folder / "errors.log")]
        common = ["--pg-uri", uri, "--mongo-uri", mongo.uri]
        engine("online", "start", *common, *files, "--fresh")
        load = AppWrites(client["nextcrm"], interval=1 / rate, ids_read=2000)
        load.start()
        t0 = time.monotonic()
        engine("migrate", "--online", *common, "--quiet", "--fresh", "--error-log", str(folder / "errors.log"),
               "--checkpoint-file", str(folder / "cp.json"))
        bulk = time.monotonic() - t0
        st = wait_caught_up(folder / "status.json")
        baseline = folder / "baseline.json"
        t0 = time.monotonic()
        engine("validate", *common, "--error-log", str(folder / "errors.log"), "--report", str(folder / "base.json"),
               "--baseline", str(baseline), ok=(0, 1))  # 1: records in flight differ (checked again at cutover)
        full = time.monotonic() - t0
        time.sleep(5)  # the catch-up under the steady load
        load.stop.set()  # maintenance on
        load.join(30)
        started = time.monotonic()
        engine("online", "stop", *files)
        engine("online", "cutover", *common, *files, "--report", str(folder / "cutover.json"))
        cut = time.monotonic()
        engine("validate", *common, "--error-log", str(folder / "errors.log"), "--report", str(folder / "v.json"),
               "--since", str(baseline))
        seconds, validation = time.monotonic() - started, time.monotonic() - cut
        report = json.loads((folder / "cutover.json").read_text())
        checked = json.loads((folder / "v.json").read_text())
        print(f"  scale {scale:g}: bulk {bulk:.0f} s while the app wrote ({load.writes} writes at {rate:g}/s); "
              f"catch-up {st['seconds_behind']} s behind at its last sample; the engine's part of the window "
              f"{seconds:.1f} s: stop and cutover {cut - started:.1f} s ("
              + ", ".join(f"{k} {v:.1f} s" for k, v in report["parts"].items())
              + f"), validation {validation:.1f} s ({checked['rowsChecked']} records changed since the full pass "
              f"of {full:.1f} s while the app wrote: {checked['overallStatus']}); {report['status']}", flush=True)
        pg.drop_db(f"online_{str(scale).replace('.', '_')}")
        return {"scale": scale, "seconds": seconds, "status": report["status"]}
    finally:
        mongo.stop()


def backlog_rate(pg: PgServer, n: int, work: Path) -> float:
    """Documents/s of `online apply` on a backlog of n changed documents after a bulk of scale 0.05."""
    mongo = MongoServer().start()
    try:
        client = pymongo.MongoClient(mongo.uri)
        write_live(client, db="nextcrm", scale=0.05, seed=1)
        uri = pg.create_db("online_backlog")
        common = ["--pg-uri", uri, "--mongo-uri", mongo.uri]
        engine("online", "capture", *common, "--seconds", "1")  # the streams opened (their tokens stored) first
        engine("migrate", "--online", *common, "--quiet", "--fresh", "--error-log", str(work / "backlog-errors.log"),
               "--checkpoint-file", str(work / "backlog-cp.json"))
        capture = subprocess.Popen([sys.executable, "-m", "mongo2pg", "online", "capture", *common, "--until-idle", "3"],
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        capture.stdout.readline()  # the streams are open
        load = AppWrites(client["nextcrm"], interval=0, ids_read=2000)
        load.start()
        while load.writes < n:
            time.sleep(0.2)
        load.stop.set()
        load.join(30)
        capture.wait(600)
        out = engine("online", "apply", *common, "--batch", "2000", "--error-log", str(work / "backlog-errors.log"))
        print(f"  {out.stdout.strip()}", flush=True)
        line = out.stdout.split(" changed documents in ")
        docs, secs = int(line[0].split()[-1]), float(line[1].split(" s ")[0])
        pg.drop_db("online_backlog")
        return secs * n / docs if docs else float("inf")
    finally:
        mongo.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scales", type=float, nargs=2, default=[1.0, 4.0], metavar=("FIRST", "SECOND"))
    ap.add_argument("--rate", type=float, default=50, help="the app's writes per second during bulk and catch-up")
    ap.add_argument("--backlog", type=int, default=10_000, help="changed documents drained by apply")
    args = ap.parse_args()
    settings = {**production_settings(), **DURABLE}
    print(f"bench-online: CPU calibration {cpu_calibration():.2f}s; PostgreSQL durable (fsync, synchronous_commit, "
          f"full_page_writes on); source nx-27017", flush=True)
    work = Path(tempfile.mkdtemp(prefix="m2p-bench-online-"))
    pg = PgServer(settings=settings).start()
    results = []
    try:
        drain = backlog_rate(pg, args.backlog, work)
        results.append((f"{args.backlog:,} changes drained (s)", drain, BACKLOG_TARGET))
        first, second = (window_at(s, pg, args.rate, work) for s in args.scales)
        results.append((f"engine's part of the window at scale {args.scales[0]:g} (s)", first["seconds"], WINDOW_TARGET))
        growth = second["seconds"] / first["seconds"] - 1
        results.append((f"window growth scale {args.scales[0]:g} -> {args.scales[1]:g}", growth, GROWTH_TARGET))
    finally:
        pg.stop()
    for name, value, bound in results:
        print(f"target {name}: {'met' if value <= bound else 'NOT met'} ({value:,.2f}, at most {bound:g}) [durable]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
