"""Run ansible-playbook the way an operator does: the project's ansible.cfg, the venv, no colour."""

from __future__ import annotations

import json
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


def render(expression: str, work: Path, extra_vars: dict, inventory: str | Path | None = None) -> str:
    """What `{{ expression }}` renders to in a play on localhost with this inventory and extra vars, as the
    phases render it (the project's filters and group vars); the play's own failure fails the caller."""
    out, play = work / "rendered", work / "render.yml"
    play.write_text(f"""
- name: Render an expression
  hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.copy:
        dest: "{{{{ out }}}}"
        mode: "0600"
        content: "{{{{ {expression} }}}}"
""")
    r = playbook(str(play), "-e", json.dumps({**extra_vars, "out": str(out)}), inventory=inventory)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    return out.read_text()


def recap(stdout: str, host: str = "localhost") -> dict[str, int]:
    """The PLAY RECAP counters of one host (summed over the plays' recap line)."""
    for line in stdout.splitlines()[::-1]:
        if line.startswith(host + " ") and "ok=" in line:
            return {k: int(v) for k, v in (kv.split("=") for kv in line.split(":", 1)[1].split())}
    raise AssertionError(f"no PLAY RECAP line for {host}")
