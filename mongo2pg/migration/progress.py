"""Progress of a run, for people and for playbooks: every worker event lands here, which appends its
issues to the error log and rewrites the checkpoint mirror and the progress file (atomically, 0600)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..files import write_private
from ..issues import append_issues
from ..mapping import Mapping
from .options import Options


class Progress:
    """Collects worker events; keeps the checkpoint mirror and the progress file current."""

    def __init__(self, opts: Options, mapping: Mapping, render=None):
        self.opts, self.render = opts, render
        self.state: dict[str, dict[str, Any]] = {}
        self.started = time.monotonic()
        self.error_log = Path(opts.error_log)
        self.checkpoint = Path(opts.checkpoint_file)
        self.progress = Path(opts.progress_file) if opts.progress_file else None
        self.mapping = mapping
        self.phase = "load"
        self.warnings: list[str] = []  # HIGH error rates, hangs: the decision tree's lines, newest last

    def handle(self, ev: dict[str, Any]) -> None:
        append_issues(self.error_log, ev.get("issues") or ())
        if ev["event"] == "warning":
            self.warnings.append(ev["message"])
        if ev["event"] in ("start", "batch", "done"):
            st = self.state.setdefault(ev["table"], {"started": time.monotonic()})
            st.update({k: ev[k] for k in ("total", "position", "loaded", "rejected") if k in ev})
            st["done"] = ev["event"] == "done"
            if ev["event"] == "start":
                st["started"], st["start_position"] = time.monotonic(), ev["position"]
        self.write()
        if self.render:
            self.render(ev, self)

    def put(self, ev: dict[str, Any]) -> None:
        """Events of this process (post-load steps) arrive as a worker's would, without a queue."""
        self.handle(ev)

    def enter(self, phase: str) -> None:
        self.phase = phase
        self.write()

    def snapshot(self) -> dict[str, Any]:
        total = sum(s.get("total", 0) for s in self.state.values())
        done = sum(s.get("position", 0) for s in self.state.values())
        elapsed = time.monotonic() - self.started
        return {"updated_at": datetime.now(UTC).isoformat(), "phase": self.phase, "elapsed_seconds": round(elapsed, 1),
                "records_done": done, "records_known": total, "warnings": self.warnings[-5:],
                "tables": {t: {k: v for k, v in s.items() if k not in ("started", "start_position")}
                           for t, s in self.state.items()}}

    def write(self) -> None:
        snap = self.snapshot()
        mirror = {"version": "mongo2pg-1", "mapping": self.mapping.name, "mapping_digest": self.mapping.digest,
                  "note": "mirror for humans; the authoritative state is the mongo2pg.checkpoint table", **snap}
        write_private(self.checkpoint, json.dumps(mirror, indent=1))
        if self.progress:
            write_private(self.progress, json.dumps(snap))

    def finish(self, totals: dict[str, Any]) -> None:
        self.phase = "complete"
        if self.progress:
            write_private(self.progress, json.dumps({**self.snapshot(), "summary": totals}))

    def drain(self, queue) -> int:
        """Handle every event waiting in a worker queue; returns how many there were."""
        n = 0
        while True:
            try:
                ev = queue.get_nowait()
            except Exception:  # noqa: BLE001 - queue.Empty from either queue kind
                return n
            self.handle(ev)
            n += 1
