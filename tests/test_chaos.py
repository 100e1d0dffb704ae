"""`make chaos`'s short seeded round in `make test`: a live migration (nx-27017 -> PostgreSQL) with the engine
killed, the target and the source restarted and a lock held at seeded moments, ending with tables equal to
an uninterrupted run's; what was injected when is printed."""

from __future__ import annotations

import subprocess
import sys

from ansible_run import ROOT


def test_a_seeded_chaos_round_ends_with_the_uninterrupted_runs_tables():
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "chaos.py"), "--rounds", "1", "--seed", "5",
                        "--scale", "0.03", "--faults", "4"], capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-3000:]
    assert "round 1: identical to the uninterrupted run" in r.stdout and "1 of 1 rounds clean" in r.stdout
    injected = [line for line in r.stdout.splitlines() if line.startswith("  round 1 t=")]
    assert any(k in line for line in injected for k in ("kill-engine", "restart-target", "restart-source",
                                                          "hold-lock")), r.stdout
