#!/usr/bin/env python3
"""LAB FIXTURE, not NextCRM: a tiny stand-in for the NextCRM web app, so the lab can cut over for real.

It reads DATABASE_URL from an env file (like the real app's .env) at start: `mongodb://...` serves
from MongoDB, `postgresql://...` from PostgreSQL. While the maintenance flag file exists, every
request but /health answers 503 unless it carries the header X-Maintenance-Bypass (the smoke
tests, before traffic reopens). Endpoints (JSON): GET /health; GET /api/accounts; GET/PUT/DELETE
/api/accounts/<id>; POST /api/accounts; GET /api/accounts/<id>/contacts; GET /api/search?q=;
GET /api/dashboard; on MongoDB also (the online demo's writer, lab/app_writer.py) POST
/api/accounts/<id>/contacts, PUT /api/accounts/<id>/watchers {user, action: add|remove, side:
account|user}, GET /api/users.

    nextcrm_standin.py --env-file FILE --port N [--maintenance-flag FILE]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse


def read_env_file(path: str) -> dict[str, str]:
    env = {}
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip().strip('"').strip("'")
    return env


class MongoBackend:
    name = "mongodb"

    def __init__(self, url: str):
        import pymongo
        from bson import ObjectId

        self.oid = ObjectId
        client = pymongo.MongoClient(url, serverSelectionTimeoutMS=5000)
        self.db = client.get_database(urlparse(url).path.strip("/") or "nextcrm")

    def _acc(self, d):
        return {"id": str(d["_id"]), "name": d.get("name"), "status": d.get("status")}

    def list_accounts(self, limit):
        return [self._acc(d) for d in self.db.crm_Accounts.find({}, sort=[("_id", 1)], limit=limit)]

    def get_account(self, id_):
        d = self.db.crm_Accounts.find_one({"_id": self.oid(id_)}) if self.oid.is_valid(id_) else None
        return self._acc(d) if d else None

    def create(self, name):
        return str(self.db.crm_Accounts.insert_one({"name": name, "__v": 0}).inserted_id)

    def update(self, id_, name):
        return self.db.crm_Accounts.update_one({"_id": self.oid(id_)}, {"$set": {"name": name}}).matched_count == 1

    def delete(self, id_):
        return self.db.crm_Accounts.delete_one({"_id": self.oid(id_)}).deleted_count == 1

    def search(self, q):
        return [self._acc(d) for d in self.db.crm_Accounts.find({"name": {"$regex": re.escape(q), "$options": "i"}},
                                                                 limit=20)]

    def contacts_of(self, id_):
        return [{"id": str(d["_id"]), "last_name": d.get("last_name")}
                for d in self.db.crm_Contacts.find({"accountsIDs": self.oid(id_)}, limit=50)]

    def dashboard(self):
        return {c: self.db[c].count_documents({}) for c in ("crm_Accounts", "crm_Contacts", "crm_Leads",
                                                            "crm_Opportunities")}

    def users(self, limit):
        return [{"id": str(d["_id"])} for d in self.db.Users.find({}, {"_id": 1}, sort=[("_id", 1)], limit=limit)]

    def add_contact(self, id_, last_name):
        return str(self.db.crm_Contacts.insert_one({"__v": 0, "last_name": last_name,
                                                     "accountsIDs": self.oid(id_)}).inserted_id)

    def watch(self, id_, user, add, side):
        """A watcher link added or removed on one side's array, as the app's two pages each do."""
        op = "$addToSet" if add else "$pull"
        if side == "account":
            r = self.db.crm_Accounts.update_one({"_id": self.oid(id_)}, {op: {"watchers": self.oid(user)}})
        else:
            r = self.db.Users.update_one({"_id": self.oid(user)}, {op: {"watching_accountsIDs": self.oid(id_)}})
        return r.matched_count == 1


class PostgresBackend:
    name = "postgresql"

    def __init__(self, url: str):
        import psycopg2

        self.conn = psycopg2.connect(url, application_name="nextcrm-standin")
        self.conn.autocommit = True

    def _q(self, sql, args=()):
        with self.conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall() if cur.description else cur.rowcount

    def list_accounts(self, limit):
        return [{"id": str(i), "name": n, "status": s}
                for i, n, s in self._q('SELECT id, name, status FROM "crm_Accounts" ORDER BY id LIMIT %s', (limit,))]

    def get_account(self, id_):
        rows = self._q('SELECT id, name, status FROM "crm_Accounts" WHERE id::text = %s', (id_,))
        return {"id": str(rows[0][0]), "name": rows[0][1], "status": rows[0][2]} if rows else None

    def create(self, name):
        return str(self._q('INSERT INTO "crm_Accounts" (id, "__v", name) VALUES (gen_random_uuid(), 0, %s) '
                           'RETURNING id', (name,))[0][0])

    def update(self, id_, name):
        return self._q('UPDATE "crm_Accounts" SET name = %s WHERE id::text = %s', (name, id_)) == 1

    def delete(self, id_):
        return self._q('DELETE FROM "crm_Accounts" WHERE id::text = %s', (id_,)) == 1

    def search(self, q):
        return [{"id": str(i), "name": n} for i, n in
                self._q('SELECT id, name FROM "crm_Accounts" WHERE name ILIKE %s LIMIT 20', (f"%{q}%",))]

    def contacts_of(self, id_):
        return [{"id": str(i), "last_name": n} for i, n in
                self._q('SELECT id, last_name FROM "crm_Contacts" WHERE "accountsIDs"::text = %s LIMIT 50', (id_,))]

    def dashboard(self):
        return {t: self._q(f'SELECT count(*) FROM "{t}"')[0][0]
                for t in ("crm_Accounts", "crm_Contacts", "crm_Leads", "crm_Opportunities")}


def make_handler(backend, maintenance_flag: Path | None):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt, *args):  # access log on stderr, one line, no query strings
            sys.stderr.write(f"{time.strftime('%H:%M:%S')} {self.command} {urlparse(self.path).path}\n")

        def _send(self, code, body):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self):
            n = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(n) or b"{}")

        def _route(self):
            url = urlparse(self.path)
            parts = [p for p in url.path.split("/") if p]
            m = self.command
            in_maintenance = bool(maintenance_flag and maintenance_flag.exists())
            if parts == ["health"]:  # internal: answers in maintenance too
                return 200, {"status": "ok", "backend": backend.name, "maintenance": in_maintenance}
            if in_maintenance and not self.headers.get("X-Maintenance-Bypass"):
                return 503, {"status": "maintenance"}
            if parts == ["api", "accounts"] and m == "GET":
                return 200, backend.list_accounts(int(parse_qs(url.query).get("limit", ["20"])[0]))
            if parts == ["api", "accounts"] and m == "POST":
                return 201, {"id": backend.create(self._body().get("name", ""))}
            if len(parts) == 3 and parts[:2] == ["api", "accounts"]:
                if m == "GET":
                    acc = backend.get_account(parts[2])
                    return (200, acc) if acc else (404, {"error": "not found"})
                if m == "PUT":
                    return (200, {"ok": True}) if backend.update(parts[2], self._body().get("name", "")) \
                        else (404, {"error": "not found"})
                if m == "DELETE":
                    return (200, {"ok": True}) if backend.delete(parts[2]) else (404, {"error": "not found"})
            if len(parts) == 4 and parts[:2] == ["api", "accounts"] and parts[3] == "contacts":
                if m == "POST":  # the lab app's online writer (lab/app_writer.py); MongoDB era only
                    return 201, {"id": backend.add_contact(parts[2], self._body().get("last_name", ""))}
                return 200, backend.contacts_of(parts[2])
            if len(parts) == 4 and parts[:2] == ["api", "accounts"] and parts[3] == "watchers" and m == "PUT":
                b = self._body()
                return (200, {"ok": True}) if backend.watch(parts[2], b["user"], b.get("action") == "add",
                                                            b.get("side", "account")) else (404, {"error": "not found"})
            if parts == ["api", "users"] and m == "GET":
                return 200, backend.users(int(parse_qs(url.query).get("limit", ["50"])[0]))
            if parts == ["api", "search"]:
                return 200, backend.search(parse_qs(url.query).get("q", [""])[0])
            if parts == ["api", "dashboard"]:
                return 200, backend.dashboard()
            return 404, {"error": "no such endpoint"}

        def _handle(self):
            try:
                self._send(*self._route())
            except Exception as exc:  # noqa: BLE001 - a lab fixture answers 500 and keeps serving
                self._send(500, {"error": type(exc).__name__})

        do_GET = do_POST = do_PUT = do_DELETE = _handle

    return Handler


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env-file", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--maintenance-flag")
    args = p.parse_args()
    url = read_env_file(args.env_file).get("DATABASE_URL", "")
    backend = MongoBackend(url) if url.startswith("mongodb") else PostgresBackend(url)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(
        backend, Path(args.maintenance_flag) if args.maintenance_flag else None))
    print(f"nextcrm-standin (lab fixture) on 127.0.0.1:{args.port}, backend {backend.name}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
