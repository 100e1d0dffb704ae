"""What a terminal shows of a migration: a live bar per table (periodic lines when output is a log),
and the summary table at the end."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any


def _fmt_eta(seconds: float) -> str:
    if seconds <= 0 or seconds != seconds:
        return "--"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"


class ConsoleProgress:
    """A live bar per table on a terminal; periodic lines when output is a log."""

    def __init__(self, stream=sys.stderr):
        self.stream = stream
        self.tty = stream.isatty()
        self.last = 0.0

    def __call__(self, ev: dict[str, Any], progress) -> None:
        now = time.monotonic()
        if ev["event"] == "done":
            st = progress.state.get(ev["table"], {})
            secs = max(now - st.get("started", now), 1e-6)
            done = ev["position"] - st.get("start_position", 0)
            self._line(f"  done  {ev['table']:<32} {ev['loaded']:>9,} loaded {ev['rejected']:>6,} rejected "
                       f"{secs:7.1f}s {done / secs:>9,.0f} rec/s")
        elif ev["event"] == "warning":
            self._line(f"  {ev['message']}")
        elif ev["event"] == "retry":
            self._line(f"  retry {ev['table']}: {ev['message']} (again in {ev['delay']:.0f}s)")
        elif ev["event"] == "batch" and now - self.last >= (0.5 if self.tty else 5.0):
            self.last = now
            parts = []
            for t, st in progress.state.items():
                if st.get("done") or not st.get("total"):
                    continue
                pct = st["position"] / st["total"]
                secs = max(now - st["started"], 1e-6)
                rate = (st["position"] - st.get("start_position", 0)) / secs
                bar = "#" * int(pct * 20) + "." * (20 - int(pct * 20))
                parts.append(f"{t} [{bar}] {pct:5.1%} {st['position']:,}/{st['total']:,} {rate:,.0f} rec/s "
                             f"ETA {_fmt_eta((st['total'] - st['position']) / rate if rate else 0)}")
            if parts:
                text = "  " + " | ".join(parts)
                if self.tty:
                    self.stream.write("\r\033[K" + text[: os.get_terminal_size().columns - 1])
                    self.stream.flush()
                else:
                    self._line(text)

    def _line(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r\033[K")
        self.stream.write(text + "\n")
        self.stream.flush()


def print_summary(summary) -> None:
    tot = summary.totals()
    print(f"\n{'table':<32} {'source':>10} {'loaded':>10} {'rejected':>9} {'fixups':>7} {'seconds':>8} {'rec/s':>9}")
    for t in summary.tables:
        rate = f"{t.source / t.seconds:,.0f}" if t.seconds else "-"
        flag = "" if t.reconciled else "  <-- source != loaded + rejected"
        absent = " (absent in source)" if t.absent else ""
        print(f"{t.table:<32} {t.source:>10,} {t.loaded:>10,} {t.rejected:>9,} {t.fixups:>7,} {t.seconds:>8.1f} "
              f"{rate:>9}{absent}{flag}")
    for name, j in summary.junctions.items():
        print(f"{name:<32} {'':>10} {j['rows']:>10,} {'':>9} {j['dangling_links']:>7,}   (junction, "
              f"{j['links_staged']:,} links read from both sides)")
    print(f"\nTotal: {tot['source']:,} documents, {tot['loaded']:,} loaded, {tot['rejected']:,} rejected, "
          f"{tot['fixups']:,} fix-ups, {tot['junction_rows']:,} junction rows in {tot['seconds']:.1f}s "
          f"({tot['documents_per_second']:,} documents/s)")
    if summary.online and not tot["reconciled"]:
        print("Online: the source changed while it was read; its counts are reconciled at cutover, after the "
              "catch-up (mongo2pg online apply, then validate)")
    else:
        print("Reconciled: source = loaded + rejected for every table" if tot["reconciled"]
              else "NOT RECONCILED: see the tables marked above")
    if summary.unmapped_collections:
        print(f"Source collections not in the mapping (not migrated): {', '.join(summary.unmapped_collections)}")
    if summary.unknown_fields:
        print(f"Fields not in the mapping (ignored): {json.dumps(summary.unknown_fields)}")
    print(f"Error log: {summary.error_log}")
