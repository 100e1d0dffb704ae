"""What the command handlers share: a required option's check, writing a result or printing it, transfer
progress lines."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ..errors import ConfigError


def need(args, *names: str) -> None:
    for n in names:
        if not getattr(args, n.replace("-", "_"), None):
            raise ConfigError(f"--{n} is required (or set MONGO2PG_{n.upper().replace('-', '_')})")


def write_or_print(out: str | None, text: str, what: str) -> None:
    if out is None:
        sys.stdout.write(text)
        return
    Path(out).write_text(text, encoding="utf-8")
    print(f"{what} -> {out}")


def transfer_progress(verb: str):
    last = [0.0]

    def progress(name: str, n: int, total: int) -> None:
        now = time.monotonic()
        # Big collections only: a line at most every 2 s and when one finishes.
        if total >= 10_000 and (n == total or now - last[0] >= 2.0):
            last[0] = now
            print(f"  {verb} {name:<32} {n:>10,}/{total:,}", file=sys.stderr, flush=True)
    return progress
