#!/usr/bin/python
"""Ansible module: the runbook's smoke tests (6.4 step 3), HTTP and SQL, each timed against its target."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: app_smoke_test
short_description: Timed HTTP and SQL smoke tests of the application after the cutover
description:
  - Runs HTTP checks in order against O(base_url). A check may capture a value from its JSON answer
    (C(capture), e.g. C(id) of the first list element or of the created record) for later checks to
    use as C({name}) in their path; a create/update/delete sequence cleans up after itself.
  - Runs SQL checks against PostgreSQL (O(pg_uri)), the same reads the application makes.
  - Each check has a latency target in milliseconds (the runbook's list < 100, single record < 20,
    joins < 300, search < 200, dashboard < 500); O(latency_policy) decides whether a slow check fails.
  - Writes the results as JSON to O(report) and returns a Markdown table.
options:
  base_url: {description: Application base URL., type: str, required: true}
  http_checks:
    description: "List of {name, method (GET), path, body, expect_status (200), max_ms, capture: {var: json key}}."
    type: list
    elements: dict
    default: []
  pg_uri: {description: PostgreSQL URI for the SQL checks (never logged)., type: str}
  sql_checks: {description: "List of {name, query, max_ms}.", type: list, elements: dict, default: []}
  latency_policy: {description: What a check slower than its target does., type: str, choices: [fail, warn], default: fail}
  report: {description: Where to write the results (JSON, 0600)., type: path}
  timeout: {description: Seconds per HTTP request., type: float, default: 10}
  headers: {description: Headers sent with every HTTP check (e.g. a maintenance bypass)., type: dict, default: {}}
author: mongo2pg maintainers
"""

EXAMPLES = r"""
- name: Smoke tests
  app_smoke_test:
    base_url: http://127.0.0.1:3000
    http_checks:
      - {name: list accounts, path: /api/accounts, max_ms: 100, capture: {account: "0.id"}}
      - {name: account detail, path: "/api/accounts/{account}", max_ms: 20}
    pg_uri: "{{ app_pg_uri }}"
    sql_checks:
      - {name: list accounts, query: 'SELECT id, name FROM "crm_Accounts" LIMIT 20', max_ms: 100}
"""

RETURN = r"""
results: {description: "One entry per check: kind, name, ok, status, ms, max_ms, slow, error.", returned: always, type: list}
table: {description: The results as a Markdown table., returned: always, type: str}
failed_checks: {description: Names of the failed checks., returned: always, type: list}
slow_checks: {description: Names of the checks over their latency target., returned: always, type: list}
"""

import json  # noqa: E402
import time  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible.module_utils.mongo2pg_common import import_engine  # noqa: E402


def sql_check(conn, check: dict) -> dict:
    result = {"kind": "sql", "name": check["name"], "target": check["query"][:80], "max_ms": check.get("max_ms")}
    started = time.perf_counter()
    try:
        with conn.cursor() as cur:
            cur.execute(check["query"])
            rows = len(cur.fetchall()) if cur.description else cur.rowcount
        conn.rollback()
    except Exception as exc:  # noqa: BLE001 - a failed check is a result, not a crash
        conn.rollback()
        return {**result, "ok": False, "ms": None, "error": str(exc).strip().splitlines()[0]}
    return {**result, "ok": True, "rows": rows, "ms": round((time.perf_counter() - started) * 1000, 1), "error": None}


def markdown(results: list[dict]) -> str:
    lines = ["| check | kind | target | ms | target ms | result |", "| --- | --- | --- | ---: | ---: | --- |"]
    for r in results:
        verdict = "FAIL: " + (r["error"] or "") if not r["ok"] else ("SLOW" if r.get("slow") else "ok")
        lines.append(f"| {r['name']} | {r['kind']} | `{r['target']}` | {r['ms'] if r['ms'] is not None else '-'} | "
                     f"{r['max_ms'] or '-'} | {verdict} |")
    return "\n".join(lines)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "base_url": {"type": "str", "required": True},
            "http_checks": {"type": "list", "elements": "dict", "default": []},
            "pg_uri": {"type": "str", "no_log": True},
            "sql_checks": {"type": "list", "elements": "dict", "default": []},
            "latency_policy": {"type": "str", "choices": ["fail", "warn"], "default": "fail"},
            "report": {"type": "path"},
            "timeout": {"type": "float", "default": 10.0},
            "headers": {"type": "dict", "default": {}},
        },
        supports_check_mode=False,
    )
    httpcheck, connect, errors, files = import_engine(module, "ops.httpcheck", "connect", "errors", "files")
    p = module.params
    captured: dict = {}
    results = []
    for check in p["http_checks"]:
        results.append(httpcheck.http_check(p["base_url"], check, captured, p["timeout"], p["headers"]))
    if p["sql_checks"]:
        try:
            conn = connect.pg_connect(p["pg_uri"], "mongo2pg-smoke")
        except errors.Mongo2PgError as exc:
            module.fail_json(msg=str(exc), results=results)
        try:
            results.extend(sql_check(conn, c) for c in p["sql_checks"])
        finally:
            conn.close()
    for r in results:
        r["slow"] = bool(r["ok"] and r["max_ms"] and r["ms"] is not None and r["ms"] > r["max_ms"])
    failed = [r["name"] for r in results if not r["ok"]]
    slow = [r["name"] for r in results if r["slow"]]
    out = {"changed": False, "results": results, "table": markdown(results), "failed_checks": failed,
           "slow_checks": slow}
    if p["report"]:
        files.write_private(p["report"], json.dumps({"results": results, "failed": failed, "slow": slow}, indent=1))
    if failed or (slow and p["latency_policy"] == "fail"):
        module.fail_json(msg=f"smoke tests failed: {failed}; over their latency target: {slow}", **out)
    for name in slow:
        module.warn(f"smoke check {name!r} was over its latency target")
    module.exit_json(**out)


if __name__ == "__main__":
    main()
