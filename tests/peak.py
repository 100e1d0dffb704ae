"""Peak memory of a whole command: the largest resident set of any process under it (workers included).

Each command runs under a fresh Python of its own that waits for it and reads RUSAGE_CHILDREN, so one
command's peak cannot show in the next one's figure.
"""

from __future__ import annotations

import subprocess
import sys

_PEAK = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
         "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(r.returncode)")


def run_measured(cmd: list[str], **kwargs) -> tuple[subprocess.CompletedProcess, float]:
    """(the finished command, its peak RSS in MB); its stderr without the measurement line."""
    r = subprocess.run([sys.executable, "-c", _PEAK, *cmd], capture_output=True, text=True, **kwargs)
    lines = r.stderr.rstrip("\n").split("\n")
    r.stderr = "\n".join(lines[:-1])
    return r, int(lines[-1]) / 1024


def mongo2pg_measured(*args: str, **kwargs) -> tuple[subprocess.CompletedProcess, float]:
    return run_measured([sys.executable, "-m", "mongo2pg.cli", *args], **kwargs)
