#!/usr/bin/env python3
"""make bench-capture: what change capture (the lossless rollback's triggers) costs the application's writes.

A PostgreSQL with the runbook's durable settings (fsync, synchronous_commit and full_page_writes on),
NextCRM migrated into it (sample data, scale 0.02), then the app's kind of write, one transaction per
request on one connection: an account created, a contact renamed, an opportunity link added and
removed. Rounds alternate without and with capture (same server, same run); prints ms per transaction
and the overhead as a ratio.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import psycopg2  # noqa: E402
from servers import PgServer  # noqa: E402

from mongo2pg.mapping import load_mapping  # noqa: E402
from mongo2pg.reverse import capture  # noqa: E402

ROUNDS, PER_ROUND = 6, 300
DURABLE = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on", "wal_compression": "on"}


def app_writes(conn, n: int) -> float:
    """n request-sized transactions; seconds."""
    with conn.cursor() as cur:
        cur.execute('SELECT id FROM "crm_Contacts" ORDER BY id LIMIT 1')
        (contact,) = cur.fetchone()
        cur.execute('SELECT id FROM "crm_Opportunities" WHERE id NOT IN (SELECT opportunity_id FROM '
                    '"ContactsToOpportunities" WHERE contact_id = %s) ORDER BY id LIMIT 1', (contact,))
        (opportunity,) = cur.fetchone()
    conn.commit()
    started = time.perf_counter()
    for i in range(n):
        with conn.cursor() as cur:
            cur.execute('INSERT INTO "crm_Accounts" (id, "__v", name) VALUES (gen_random_uuid(), 0, %s)', (f"bench {i}",))
            cur.execute('UPDATE "crm_Contacts" SET last_name = %s WHERE id = %s', (f"name {i}", contact))
            if i % 2:
                cur.execute('DELETE FROM "ContactsToOpportunities" WHERE contact_id = %s AND opportunity_id = %s',
                            (contact, opportunity))
            else:
                cur.execute('INSERT INTO "ContactsToOpportunities" (contact_id, opportunity_id) VALUES (%s, %s)',
                            (contact, opportunity))
        conn.commit()
    return time.perf_counter() - started


def main() -> int:
    mapping = load_mapping("nextcrm")
    work = Path(tempfile.mkdtemp(prefix="m2p-bench-capture-"))
    server = PgServer(settings=DURABLE).start()
    try:
        uri = server.create_db("bench_capture")
        subprocess.run([sys.executable, "-m", "mongo2pg", "sample-data", "--scale", "0.02", "--seed", "1",
                        "--out-dump", str(work / "dump")], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        subprocess.run([sys.executable, "-m", "mongo2pg", "migrate", "--dump", str(work / "dump"), "--pg-uri", uri,
                        "--quiet", "--error-log", str(work / "errors.log"), "--checkpoint-file", str(work / "cp.json"),
                        "--summary-file", str(work / "summary.json")], check=True, stdout=subprocess.DEVNULL)
        conn = psycopg2.connect(uri)
        app_writes(conn, 50)  # warm up
        timings: dict[bool, list[float]] = {False: [], True: []}
        for r in range(ROUNDS):
            for captured in (False, True) if r % 2 == 0 else (True, False):
                if captured:
                    capture.install(conn, mapping, ())
                else:
                    capture.remove(conn)
                timings[captured].append(app_writes(conn, PER_ROUND) / PER_ROUND * 1000)
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM mongo2pg.changes")
            (recorded,) = cur.fetchone()
        conn.close()
    finally:
        server.stop()
    off, on = statistics.median(timings[False]), statistics.median(timings[True])
    print(f"capture: durable PostgreSQL, {ROUNDS} rounds of {PER_ROUND} app transactions (insert, update, link);")
    print(f"  without capture {off:.2f} ms per transaction, with capture {on:.2f} ms "
          f"(median of rounds): x{on / off:.2f} ({(on / off - 1) * 100:+.0f}%); {recorded:,} changes recorded")
    return 0


if __name__ == "__main__":
    sys.exit(main())
