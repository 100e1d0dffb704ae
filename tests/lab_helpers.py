"""What the lab tests (self-hosted and managed) share: the lab app's API and health, and the lab's secrets."""

from __future__ import annotations

import json
import urllib.request

from ansible_run import ROOT

APP = "http://127.0.0.1:18080"
SECRETS_ARG = ("-e", f"@{ROOT / '.lab' / 'lab-secrets.yml'}")


def lab_secrets() -> dict[str, str]:
    """The lab's generated passwords by name (scripts/lab.sh: lab_pg_password, lab_app_password, ...)."""
    text = (ROOT / ".lab" / "lab-secrets.yml").read_text()
    return {line.split(":")[0]: line.split('"')[1] for line in text.splitlines() if line.startswith("lab_")}


def api(method: str, path: str, body: dict | None = None):
    req = urllib.request.Request(APP + path, method=method, headers={"Content-Type": "application/json"},
                                 data=json.dumps(body).encode() if body is not None else None)
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def health() -> dict:
    with urllib.request.urlopen(APP + "/health", timeout=5) as resp:
        return json.loads(resp.read())


def failed_task(run) -> str:
    """What a failed playbook run said where it failed: the lines around its first `fatal:` (else its tail)."""
    lines = run.stdout.splitlines()
    at = next((i for i, line in enumerate(lines) if line.startswith("fatal:")), None)
    shown = lines[max(0, at - 25):at + 25] if at is not None else lines[-60:]
    return "\n".join(shown) + "\n" + run.stderr[-2000:]
