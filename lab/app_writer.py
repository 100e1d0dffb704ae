#!/usr/bin/env python3
"""LAB FIXTURE: the lab app's users writing through its API while an online migration runs (make demo-online).

Accounts created, renamed and deleted; contacts created under an account; watcher links (m:n) added and
removed from either side. Each write the app acknowledged is appended to --log as a JSON line (time, what,
which ids). The first 503 (maintenance on) ends it, as users leave at the maintenance page; so does SIGTERM.

    app_writer.py --url http://127.0.0.1:18080 --log FILE [--rate 20] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime


def call(url: str, method: str, body: dict | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, {}
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, {}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--rate", type=float, default=20, help="writes per second, at most")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    rng, api = random.Random(args.seed), args.url.rstrip("/") + "/api"
    accounts: list[str] = []
    users: list[str] = []
    with open(args.log, "a", encoding="utf-8") as log:
        n = 0
        while not stop:
            time.sleep(1 / args.rate)
            if not users:
                code, got = call(f"{api}/users?limit=50", "GET")
                users = [u["id"] for u in got] if code == 200 and isinstance(got, list) else []
                code, got = call(f"{api}/accounts?limit=50", "GET")
                accounts = [a["id"] for a in got] if code == 200 and isinstance(got, list) else []
                if not users or not accounts:
                    time.sleep(1)
                    continue
            n += 1
            kind = rng.choices(["create", "rename", "delete", "contact", "watch", "unwatch"], [30, 25, 8, 15, 12, 10])[0]
            acc = rng.choice(accounts)
            if kind == "create":
                code, got = call(f"{api}/accounts", "POST", {"name": f"Online writer {n}"})
                ids = [got.get("id")] if code == 201 else []
                accounts += ids
            elif kind == "rename":
                code, _ = call(f"{api}/accounts/{acc}", "PUT", {"name": f"Renamed online {n}"})
                ids = [acc]
            elif kind == "delete" and len(accounts) > 30:
                code, _ = call(f"{api}/accounts/{acc}", "DELETE")
                ids = [acc]
                if code == 200:
                    accounts.remove(acc)
            elif kind == "contact":
                code, got = call(f"{api}/accounts/{acc}/contacts", "POST", {"last_name": f"Online {n}"})
                ids = [acc, got.get("id")]
            elif kind in ("watch", "unwatch"):
                user = rng.choice(users)
                code, _ = call(f"{api}/accounts/{acc}/watchers", "PUT",
                               {"user": user, "action": "add" if kind == "watch" else "remove",
                                "side": rng.choice(["account", "user"])})
                ids = [acc, user]
            else:
                continue
            if code in (200, 201):
                log.write(json.dumps({"at": datetime.now(UTC).isoformat(), "write": kind, "ids": ids}) + "\n")
                log.flush()
            elif code == 503:
                log.write(json.dumps({"at": datetime.now(UTC).isoformat(), "write": "maintenance", "ids": []}) + "\n")
                break
    return 0


if __name__ == "__main__":
    sys.exit(main())
