"""The maintenance window as the users saw it: from maintenance on to traffic back, and its parts, from the
run's timeline (timeline.log, second resolution) and, online, the cutover's own timing (online-cutover.json:
the engine's part, to the hundredth). Written to cutover-window.json by phase 50.

The timeline of an artifacts folder holds every run made into it: the window is the last maintenance-on and
the first of each later event."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..files import write_private

# (part, the event it starts at, the event it ends at), in order; a part whose events are absent is left out
PARTS = (("maintenance on to the app stopped", "maintenance-on", "application-stopped"),
         ("final backup", "application-stopped", "final-backup"),
         ("migration (online: drain and finish)", "migration-start", "migration-end"),
         ("validation", "migration-end", "validation"),
         ("deployment and smoke tests", "validation", "traffic-back"))


def _after_last_maintenance(timeline: str) -> tuple[dict[str, datetime], bool]:
    """The first time of each event from the last maintenance-on; whether that run was online."""
    events: list[tuple[str, datetime]] = []
    for line in timeline.splitlines():
        when, _, event = line.partition(" ")
        try:
            events.append((event.split(" ", 1)[0], datetime.fromisoformat(when.replace("Z", "+00:00"))))
        except ValueError:
            continue
    starts = [i for i, (name, _) in enumerate(events) if name == "maintenance-on"]
    if not starts:
        return {}, False
    out: dict[str, datetime] = {}
    for name, t in events[starts[-1]:]:
        out.setdefault(name, t)
    # online when this run's capture started after the run before it went into maintenance
    before = events[starts[-2] + 1 if len(starts) > 1 else 0:starts[-1]]
    return out, any(name == "online-capture-start" for name, _ in before)


def cutover_window(artifacts: str | Path) -> dict[str, Any]:
    a = Path(artifacts)
    timeline = (a / "timeline.log").read_text() if (a / "timeline.log").exists() else ""
    ev, online = _after_last_maintenance(timeline)
    if "maintenance-on" not in ev or "traffic-back" not in ev:
        raise ConfigError(f"{a / 'timeline.log'}: no maintenance-on followed by traffic-back (phases 20 and 50 write "
                          "them)")
    parts = {name: (ev[end] - ev[start]).total_seconds() for name, start, end in PARTS
             if start in ev and end in ev and ev[end] >= ev[start]}
    out: dict[str, Any] = {"mode": "online" if online else "offline",
                           "seconds": (ev["traffic-back"] - ev["maintenance-on"]).total_seconds(),
                           "maintenance_on": ev["maintenance-on"].isoformat(),
                           "traffic_back": ev["traffic-back"].isoformat(), "parts": parts}
    if online and (a / "online-cutover.json").exists():
        cut = json.loads((a / "online-cutover.json").read_text())
        out["engine"] = {"seconds": cut["seconds"], "parts": cut["parts"], "drained_events": cut["drained_events"]}
    return out


def write_window(artifacts: str | Path) -> tuple[Path, dict[str, Any]]:
    window = cutover_window(artifacts)
    path = Path(artifacts) / "cutover-window.json"
    write_private(path, json.dumps(window, indent=1) + "\n")
    return path, window
