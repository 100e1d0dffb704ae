"""One timed HTTP check against the application: status, latency, and values captured from its JSON answer
for later checks (the id of the first listed record, of a created one). Used by the smoke tests (6.4) and
by monitoring's key endpoints (6.5)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any


def dig(value: Any, path: str) -> Any:
    """`value` at a dotted path, list positions as numbers: dig(answer, "0.id")."""
    for key in str(path).split("."):
        value = value[int(key)] if isinstance(value, list) else value[key]
    return value


def http_check(base_url: str, check: dict, captured: dict, timeout: float = 10.0,
               headers: dict | None = None) -> dict:
    """Run `check` ({name, method, path, body, expect_status, max_ms, capture}); `captured` fills the
    path's {placeholders} and takes this check's captures. Never raises for the application's faults:
    they are the result (ok False, with the error)."""
    try:
        path = check["path"].format(**captured)
    except KeyError as exc:
        return {"kind": "http", "name": check["name"], "target": check["path"], "max_ms": check.get("max_ms"),
                "ok": False, "status": None, "ms": None, "error": f"nothing captured for {exc} (an earlier check failed)"}
    body = check.get("body")
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base_url.rstrip("/") + path, data=data, method=check.get("method", "GET"),
                                 headers={"Content-Type": "application/json", **(headers or {})})
    result = {"kind": "http", "name": check["name"], "target": f"{req.get_method()} {path}",
              "max_ms": check.get("max_ms")}
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, payload = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, payload = exc.code, exc.read()
    except OSError as exc:
        return {**result, "ok": False, "status": None, "ms": None, "error": str(exc)}
    result["ms"] = round((time.perf_counter() - started) * 1000, 1)
    result["status"] = status
    ok = status == check.get("expect_status", 200)
    error = None if ok else f"status {status}, expected {check.get('expect_status', 200)}"
    if ok and check.get("capture"):
        try:
            answer = json.loads(payload)
            for var, key in check["capture"].items():
                captured[var] = dig(answer, key)
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            ok, error = False, f"cannot capture {check['capture']} from the answer: {exc}"
    return {**result, "ok": ok, "error": error}
