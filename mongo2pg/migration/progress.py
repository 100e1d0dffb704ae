"""Progress of a run, for people and for playbooks: every worker event lands here, which appends its
issues to the error log, rewrites the checkpoint mirror and the progress file (atomically, 0600) and
appends to the progress sheet (the runbook's table, as CSV)."""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..files import open_private, write_private
from ..issues import append_issues
from ..mapping import Mapping
from .options import Options


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


SHEET_COLUMNS = ("time", "phase", "table", "records", "total", "percent_complete", "records_per_second", "errors")


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
        self.sheet = Path(opts.progress_sheet) if opts.progress_sheet else None
        self.sheet_seconds = opts.progress_sheet_seconds
        self._lock = threading.Lock()  # the lock watch's lines come from a thread of their own (blockers.py)

    def handle(self, ev: dict[str, Any]) -> None:
        with self._lock:
            self._handle(ev)

    def _handle(self, ev: dict[str, Any]) -> None:
        append_issues(self.error_log, ev.get("issues") or ())
        if ev["event"] == "warning":
            self.warnings.append(ev["message"])
        if ev["event"] in ("start", "batch", "done"):
            st = self.state.setdefault(ev["table"], {"started": time.monotonic()})
            st.update({k: ev[k] for k in ("total", "position", "loaded", "rejected") if k in ev})
            st["done"] = ev["event"] == "done"
            if ev["event"] == "start":
                st["started"], st["start_position"] = time.monotonic(), ev["position"]
            self._sheet_row(ev["table"], st, ev["event"])
        self.write()
        if self.render:
            self.render(ev, self)

    def _sheet_row(self, table: str, st: dict[str, Any], event: str) -> None:
        now = time.monotonic()
        if not self.sheet or (event == "batch" and now - st.get("sheet_at", 0.0) < self.sheet_seconds):
            return
        st["sheet_at"] = now
        position, total = st.get("position", 0), st.get("total", 0)
        seconds = now - st["started"]
        speed = (position - st.get("start_position", 0)) / seconds if seconds > 0 else 0.0
        self._sheet_append([[_now(), self.phase, table, position, total,
                             f"{100.0 * position / total:.1f}" if total else "100.0", f"{speed:.0f}",
                             st.get("rejected", 0)]])

    def _sheet_append(self, rows: list[list[Any]]) -> None:
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        if not self.sheet.exists() or self.sheet.stat().st_size == 0:
            writer.writerow(SHEET_COLUMNS)
        writer.writerows(rows)
        with open_private(self.sheet, "a") as f:
            f.write(text.getvalue())

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
                "tables": {t: {k: v for k, v in s.items() if k not in ("started", "start_position", "sheet_at")}
                           for t, s in self.state.items()}}

    def write(self) -> None:
        snap = self.snapshot()
        mirror = {"version": "mongo2pg-1", "mapping": self.mapping.name, "mapping_digest": self.mapping.digest,
                  "note": "mirror for humans; the authoritative state is the mongo2pg.checkpoint table", **snap}
        write_private(self.checkpoint, json.dumps(mirror, indent=1))
        if self.progress:
            write_private(self.progress, json.dumps(snap))

    def finish(self, summary) -> None:
        """The run's end: its totals in the progress file; in the sheet, a row per table with the final figures
        (rejects found after the load, e.g. dangling references, included)."""
        self.phase = "complete"
        if self.progress:
            write_private(self.progress, json.dumps({**self.snapshot(), "summary": summary.totals()}))
        if self.sheet:
            self._sheet_append([[_now(), "complete", t.table, t.loaded + t.rejected, t.source, "100.0",
                                 f"{t.source / t.seconds:.0f}" if t.seconds else "0", t.rejected]
                                for t in summary.tables if not t.absent])

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
