#!/usr/bin/env python3
"""make chaos: the faults servers have at 3 a.m., injected at seeded random moments of a migration from a
live source (nx-27017) into PostgreSQL, round after round; after each round the tables must equal an
uninterrupted run's. Prints what it injected when, and each round's verdict; exit 1 if any round differs.

Faults: the engine killed (kill -9, then rerun: it resumes), the target stopped as a crash and started
again seconds later, the source killed and started again, a session holding ACCESS EXCLUSIVE on a table
for seconds (the run names it and waits: --on-hang report). A full disk is tested on its own
(tests/test_target_faults.py): it needs a file system of its own and room made by hand.

    python scripts/chaos.py [--rounds N] [--seed S] [--scale F] [--faults K]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import psycopg2  # noqa: E402
from servers import MongoServer, PgServer, table_digests  # noqa: E402

from mongo2pg.connect import mongo_client  # noqa: E402
from mongo2pg.fixtures.write import write_live  # noqa: E402

DB = "chaos"
KINDS = ("kill-engine", "restart-target", "restart-source", "hold-lock")


def migrate(work: Path, uri: str, mongo: MongoServer) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "mongo2pg.cli", "migrate", "--mongo-uri", mongo.uri, "--db", DB, "--pg-uri", uri,
         "--quiet", "--workers", "2", "--batch-size", "2000", "--retry-seconds", "120", "--hang-seconds", "60",
         "--on-hang", "report", "--error-log", str(work / "errors.log"), "--checkpoint-file", str(work / "cp.json"),
         "--progress-file", str(work / "progress.json")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


class Round:
    def __init__(self, n: int, rng: random.Random, pg: PgServer, mongo: MongoServer, work: Path, faults: int,
                 length: float):
        self.n, self.rng, self.pg, self.mongo, self.work = n, rng, pg, mongo, work
        self.plan = sorted((rng.uniform(0.2, 0.9) * length, rng.choice(KINDS)) for _ in range(faults))
        self.log: list[str] = []
        self.started = 0.0

    def say(self, text: str) -> None:
        line = f"  round {self.n} t={time.monotonic() - self.started:5.1f}s {text}"
        self.log.append(line)
        print(line, flush=True)

    def run(self, uri: str) -> bool:
        self.started = time.monotonic()
        proc = migrate(self.work, uri, self.mongo)
        runs = 1
        for at, kind in self.plan:
            while time.monotonic() - self.started < at and proc.poll() is None:
                time.sleep(0.05)
            if proc.poll() is not None:
                self.say(f"{kind}: not injected, the run had ended")
                continue
            if kind == "kill-engine":
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                self.say("kill-engine: migrate killed (-9); started again")
                proc, runs = migrate(self.work, uri, self.mongo), runs + 1
            elif kind == "restart-target":
                down = self.rng.uniform(1, 5)
                self.pg.crash()
                self.say(f"restart-target: PostgreSQL stopped (immediate), down {down:.1f}s")
                time.sleep(down)
                self.pg.start_again()
            elif kind == "restart-source":
                down = self.rng.uniform(1, 4)
                self.mongo.kill()
                self.say(f"restart-source: nx-27017 killed (-9), down {down:.1f}s")
                time.sleep(down)
                self.mongo.start()
            else:
                self._hold_lock(uri)
        out, err = proc.communicate(timeout=900)
        for _ in range(3):  # a fault past what a run rides out by itself (e.g. the target down as it starts)
            if proc.returncode == 0:
                self.say(f"migration complete after {runs} run(s)")
                return True
            self.say(f"migrate exited {proc.returncode}: {err.strip().splitlines()[-1] if err.strip() else out[-200:]}; "
                     "rerun, as the operator would")
            proc, runs = migrate(self.work, uri, self.mongo), runs + 1
            out, err = proc.communicate(timeout=900)
        return proc.returncode == 0

    def _hold_lock(self, uri: str) -> None:
        held = self.rng.uniform(1, 4)
        table = self.rng.choice(["Users", "crm_Accounts", "crm_Contacts", "Tasks", "Documents"])
        conn = psycopg2.connect(uri, application_name="chaos-lock-holder")
        with conn.cursor() as cur:
            cur.execute(f'LOCK TABLE "{table}" IN ACCESS EXCLUSIVE MODE')
        self.say(f"hold-lock: ACCESS EXCLUSIVE on {table} for {held:.1f}s")

        def release() -> None:
            time.sleep(held)
            try:
                conn.rollback()
                conn.close()
            except psycopg2.Error:
                pass  # the target was restarted meanwhile: the lock went with the session
        threading.Thread(target=release, daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--scale", type=float, default=0.1)
    ap.add_argument("--faults", type=int, default=3, help="faults per round (default: %(default)s)")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="m2p-chaos-"))
    pg, mongo = PgServer(), MongoServer()
    pg.start()
    mongo.start()
    try:
        client = mongo_client(mongo.uri)
        write_live(client, db=DB, seed=args.seed, scale=args.scale)
        client.close()
        reference = pg.create_db("reference")
        (work / "reference").mkdir()
        started = time.monotonic()
        first = migrate(work / "reference", reference, mongo)
        out, err = first.communicate(timeout=900)
        if first.returncode != 0:
            print(f"chaos: the uninterrupted run failed: {err.strip()[-500:]}")
            return 1
        length = time.monotonic() - started
        expected = table_digests(reference)
        print(f"chaos: seed {args.seed}, scale {args.scale}, {args.rounds} round(s) of {args.faults} fault(s); "
              f"the uninterrupted run took {length:.1f}s")
        failed = 0
        for n in range(1, args.rounds + 1):
            rng = random.Random(f"{args.seed}:{n}")
            rwork = work / f"round{n}"
            rwork.mkdir()
            r = Round(n, rng, pg, mongo, rwork, args.faults, length)
            print(f"round {n}: plan " + ", ".join(f"{kind} at {at:.1f}s" for at, kind in r.plan), flush=True)
            ok = r.run(pg.create_db(f"round{n}"))
            same = ok and table_digests(pg.uri(f"round{n}")) == expected
            failed += not same
            print(f"round {n}: {'identical to the uninterrupted run' if same else 'DIFFERS or did not complete'} "
                  f"({len(expected)} tables and junctions)", flush=True)
        print(f"chaos: {args.rounds - failed} of {args.rounds} rounds clean")
        return 1 if failed else 0
    finally:
        mongo.stop()
        pg.stop()


if __name__ == "__main__":
    sys.exit(main())
