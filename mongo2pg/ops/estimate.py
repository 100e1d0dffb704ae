"""The runbook's duration estimate: "based on staging results × data size ratio + 50% buffer".

A run's phases come from its timeline (timeline.log, written by every phase): from the application
stopped to the final backup, the migration, the validation, and the deployment up to go-live; together,
the maintenance window. The estimate for this run is each of the staging run's phases × (this source's
BSON bytes / staging's) × 1.5; the size of staging's source is read from the duration-estimate.json its
own preflight wrote (or, lacking it, from its migration summary's document count, and the ratio is then
one of documents).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from ..errors import ConfigError

BUFFER = 1.5
# (phase, the event it starts at, the event it ends at); events as the phases write them to timeline.log
PHASES = (("shutdown and final backup", "application-stopped", "final-backup"),
          ("migration", "migration-start", "migration-end"),
          ("validation", "migration-end", "validation"),
          ("deployment", "validation", "go-live"))
# Online (migration_mode online), the load ran before the window: the window holds the cutover; the final
# backup comes after go-live, outside it.
ONLINE_PHASES = (("cutover: drain and finish", "migration-start", "migration-end"),
                 ("validation", "migration-end", "validation"),
                 ("deployment", "validation", "go-live"),
                 ("final backup, after the switch", "go-live", "final-backup"))
WINDOW = ("application-stopped", "go-live")


def phases_of(events: dict[str, datetime]) -> tuple[tuple[str, str, str], ...]:
    """The phases of this run's kind: online when its timeline holds the online capture's start."""
    return ONLINE_PHASES if "online-capture-start" in events else PHASES


def event_times(timeline: str) -> dict[str, datetime]:
    """The first time of each event word (the first word after the time)."""
    out: dict[str, datetime] = {}
    for line in timeline.splitlines():
        when, _, event = line.partition(" ")
        name = event.split(" ", 1)[0]
        try:
            out.setdefault(name, datetime.fromisoformat(when.replace("Z", "+00:00")))
        except ValueError:
            continue
    return out


def phase_seconds(timeline: str) -> dict[str, float]:
    """Seconds of each phase (and of the maintenance window) that the timeline holds both ends of."""
    ev = event_times(timeline)
    out = {name: (ev[end] - ev[start]).total_seconds() for name, start, end in phases_of(ev)
           if start in ev and end in ev}
    if WINDOW[0] in ev and WINDOW[1] in ev:
        out["maintenance window"] = (ev[WINDOW[1]] - ev[WINDOW[0]]).total_seconds()
    return out


def _staging_size(staging: Path) -> tuple[str, float]:
    own = staging / "duration-estimate.json"
    if own.exists():
        this = json.loads(own.read_text())["this_run"]
        return "bytes", float(this["source_bytes"])
    summary = staging / "migration-summary.json"
    if summary.exists():
        return "documents", float(json.loads(summary.read_text())["totals"]["source"])
    raise ConfigError(f"staging artifacts {staging}: neither duration-estimate.json nor migration-summary.json "
                      "to size staging's source by")


def estimate(documents: int, source_bytes: int, staging_dir: str | None, window_minutes: float | None
             ) -> dict[str, Any]:
    """This run's size, and with a staging run's artifacts the estimate per phase and in total, judged
    against the maintenance window."""
    out: dict[str, Any] = {"this_run": {"source_documents": documents, "source_bytes": source_bytes},
                           "buffer": BUFFER, "window_minutes": window_minutes}
    if not staging_dir:
        out.update(estimate=None, fits=None, reason="no staging artifacts given (staging_artifacts_dir)")
        return out
    staging = Path(staging_dir)
    timeline = staging / "timeline.log"
    if not timeline.exists():
        raise ConfigError(f"staging artifacts {staging}: no timeline.log (copy staging's artifacts folder here)")
    basis, staging_size = _staging_size(staging)
    ratio = (source_bytes if basis == "bytes" else documents) / staging_size if staging_size else 1.0
    phases = phase_seconds(timeline.read_text())
    if "maintenance window" not in phases:
        raise ConfigError(f"{timeline}: staging's timeline holds no whole maintenance window "
                          "(application-stopped ... go-live)")
    est = {name: round(seconds * ratio * BUFFER, 1) for name, seconds in phases.items()}
    total = est["maintenance window"]
    fits = None if window_minutes is None else total <= window_minutes * 60
    out.update(staging={"dir": str(staging), "phases_seconds": phases, "size_basis": basis,
                        "source_size": staging_size},
               ratio=round(ratio, 3), estimate={"phases_seconds": est, "total_seconds": total}, fits=fits)
    return out
