"""Run ansible-playbook the way an operator does: the project's ansible.cfg, the venv, no colour."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLAYBOOK = str(ROOT / ".venv" / "bin" / "ansible-playbook")


def playbook(*args: str, inventory: str | Path | None = None, env_extra: dict | None = None):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    env.update(env_extra or {})
    return subprocess.run([PLAYBOOK, "-i", str(inventory or ROOT / "inventories" / "local"), *args],
                          capture_output=True, text=True, cwd=ROOT, env=env)


def recap(stdout: str, host: str = "localhost") -> dict[str, int]:
    """The PLAY RECAP counters of one host (summed over the plays' recap line)."""
    for line in stdout.splitlines()[::-1]:
        if line.startswith(host + " ") and "ok=" in line:
            return {k: int(v) for k, v in (kv.split("=") for kv in line.split(":", 1)[1].split())}
    raise AssertionError(f"no PLAY RECAP line for {host}")
