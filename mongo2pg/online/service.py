"""The online migration's long-running part: capture and catch-up in one loop, from before the bulk read to the
cutover, outliving the play that starts it (a process of its own, with a pid file, or a systemd unit).

Each turn reads the streams (a committed batch of marks) and, once the bulk has loaded everything, applies
one batch of marks, so the lag stays small while the app writes. A status file, rewritten atomically every second, says what a watcher needs:
events captured, documents applied per second, documents waiting and the seconds the target is behind the
source (the age of the oldest waiting change). A backlog that grows for `alarm_seconds` gives a HIGH line
with what to check; a stream that cannot resume stops the service with its one line in the status file.
SIGTERM stops it between turns, everything read committed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..connect import pg_connect
from ..errors import ConfigError, Mongo2PgError
from ..files import open_private, write_private
from ..mapping import Mapping
from ..ops.state_read import backlog
from .apply import Applied, apply_waiting, bulk_complete
from .capture import Capture, mapped_collections

HISTORY = ("updated_at", "events_captured", "documents_waiting", "seconds_behind", "applied_per_second", "bulk_complete")
HIGH_ADVICE = ("check the target (CPU, I/O, locks: `mongo2pg status`), the error log's rejects, and the app's write "
               "rate; the cutover's drain grows with this backlog")


class Service:
    def __init__(self, pg_uri: str, source, mapping: Mapping, status_file: str | None, error_log: str | None,
                 batch: int = 500, alarm_seconds: float = 300, retry_seconds: float = 300,
                 history_file: str | None = None,
                 say: Callable[[str], None] | None = None):
        self.pg_uri, self.source, self.mapping = pg_uri, source, mapping
        self.status_file, self.error_log, self.batch = status_file, error_log, batch
        self.alarm_seconds, self.retry_seconds = alarm_seconds, retry_seconds
        self.conn = None
        self.history_file = history_file
        self.say = say or (lambda line: print(line, file=sys.stderr, flush=True))
        self.stopping = False
        self.figures: dict[str, Any] = {"pid": os.getpid(), "state": "starting",
                                        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
                                        "events_captured": 0, "documents_loaded": 0, "documents_removed": 0,
                                        "rejected": 0, "bulk_complete": False, "documents_waiting": 0, "applied_per_second": 0.0,
                                        "seconds_behind": 0.0, "alarm": None}
        self.applied_at: deque[tuple[float, int]] = deque(maxlen=30)  # (time, documents applied so far)
        self.growing_since: float | None = None

    def run(self) -> int:
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stopping", True))
        cap = Capture(self.pg_uri, self.source.db, mapped_collections(self.mapping))
        last = {"status": 0.0, "line": 0.0, "history": 0.0}

        def catch_up() -> None:
            if self.conn is None or self.conn.closed:
                self.conn = pg_connect(self.pg_uri, "mongo2pg online service")
            # asked every turn: a bulk started over (fresh) empties the tables again, and the catch-up waits
            self.figures["bulk_complete"] = bulk_complete(self.conn)
            done = Applied() if not self.figures["bulk_complete"] else apply_waiting(self.conn, self.source, self.mapping, batch=self.batch, error_log=self.error_log,
                                 max_batches=1)
            self._count(cap, done)
            now = time.monotonic()
            if now - last["status"] >= 1.0:
                last["status"] = now
                self._measure(self.conn, line=now - last["line"] >= 10)
                last["line"] = now if now - last["line"] >= 10 else last["line"]
                self._write()
                if self.history_file and now - last["history"] >= 5:
                    last["history"] = now
                    with open_private(self.history_file, "a") as f:
                        f.write(json.dumps({k: self.figures[k] for k in HISTORY}) + "\n")

        try:
            how = cap.open()
            resumed = sum(1 for h in how.values() if h != "from now")
            self.say(f"online: streams open on {len(how)} collections ({resumed} resumed from their stored tokens); "
                     "the bulk read may start now")
            self.figures["state"] = "capturing"
            self._write()
            cap.run(lambda: self.stopping, progress=self.say, retry_seconds=self.retry_seconds, each=catch_up)
            self.figures["state"] = "stopped"
            self.say(f"online: stopped; {self.figures['events_captured']} events captured, "
                     f"{self.figures['documents_waiting']} documents waiting for the cutover's drain")
            return 0
        except Mongo2PgError as exc:
            self.figures.update(state="failed", error=str(exc))
            self.say(f"online: FAILED: {exc}")
            return 1
        finally:
            cap.close()
            if self.conn is not None and not self.conn.closed:
                self.conn.close()
            self._write()

    def _count(self, cap: Capture, done) -> None:
        f = self.figures
        f["events_captured"] = cap.captured_events
        f["documents_loaded"] += done.loaded
        f["documents_removed"] += done.removed
        f["rejected"] += len(done.rejected)

    def _measure(self, conn, line: bool) -> None:
        with conn.cursor() as cur:
            waiting, behind = backlog(cur)
        conn.rollback()
        f, now = self.figures, time.monotonic()
        applied = f["documents_loaded"] + f["documents_removed"]
        self.applied_at.append((now, applied))
        t0, a0 = self.applied_at[0]
        f["applied_per_second"] = round((applied - a0) / (now - t0), 1) if now > t0 else 0.0
        f["seconds_behind"] = behind
        # growing: the backlog rose and has not fallen since (a steady one that the catch-up keeps level is not)
        if waiting == 0 or waiting < f["documents_waiting"]:
            self.growing_since = None
        elif waiting > f["documents_waiting"]:
            self.growing_since = self.growing_since or now
        f["documents_waiting"] = waiting
        if self.growing_since and now - self.growing_since >= self.alarm_seconds:
            f["alarm"] = (f"HIGH: the catch-up falls behind: {waiting} documents waiting, {f['seconds_behind']:.0f} s "
                          f"behind the source, growing for {(now - self.growing_since) / 60:.0f} min: {HIGH_ADVICE}")
            self.say(f["alarm"])
            self.growing_since = now  # once per alarm period, not every second
        elif not self.growing_since:
            f["alarm"] = None
        if line:
            self.say(f"online: {f['events_captured']} events captured, {applied} documents applied "
                     f"({f['applied_per_second']}/s), {waiting} waiting, {f['seconds_behind']} s behind")

    def _write(self) -> None:
        self.figures["updated_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        if self.status_file:
            write_private(self.status_file, json.dumps(self.figures, indent=1) + "\n")


# ---- the process: started detached, with a pid file; stopped with SIGTERM ----------------------------

def running_pid(pid_file: str) -> int | None:
    """The pid file's process while it is a live mongo2pg (not a zombie nobody reaped, not a reused pid)."""
    try:
        pid = int(Path(pid_file).read_text().strip())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        return None
    proc = Path(f"/proc/{pid}")
    if proc.exists():
        try:
            stat, cmdline = (proc / "stat").read_text(), (proc / "cmdline").read_bytes()
        except OSError:
            return None
        if stat.rpartition(")")[2].split()[0] == "Z" or b"mongo2pg" not in cmdline:
            return None
    return pid


def start(argv: list[str], pid_file: str, log_file: str, status_file: str, wait_seconds: float = 60) -> int:
    """`mongo2pg online run` with argv, detached (its own session, its output to log_file); returns its pid
    once its streams are open (its status file says `capturing`). Already running: that pid, nothing started."""
    pid = running_pid(pid_file)
    if pid:
        return pid
    Path(status_file).unlink(missing_ok=True)
    with open_private(log_file, "a") as log:
        proc = subprocess.Popen([sys.executable, "-m", "mongo2pg", "online", "run", *argv], stdin=subprocess.DEVNULL,
                                stdout=log, stderr=log, start_new_session=True)
    write_private(pid_file, f"{proc.pid}\n")
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        state = read_status(status_file).get("state")
        if state in ("capturing", "failed", "stopped") or proc.poll() is not None:
            break
        time.sleep(0.2)
    state = read_status(status_file)
    if state.get("state") != "capturing":
        proc.poll()
        why = state.get("error") or _tail(log_file)
        raise ConfigError(f"the online service did not start: {why}")
    return proc.pid


def stop(pid_file: str, timeout: float = 60) -> int | None:
    """SIGTERM, then SIGKILL after timeout (what it read and did not commit is read again by the next run);
    the pid stopped, or None when none ran."""
    pid = running_pid(pid_file)
    if pid is None:
        Path(pid_file).unlink(missing_ok=True)
        return None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and running_pid(pid_file):
        time.sleep(0.1)
    if running_pid(pid_file):
        os.kill(pid, signal.SIGKILL)
    Path(pid_file).unlink(missing_ok=True)
    return pid


def read_status(status_file: str | None) -> dict[str, Any]:
    try:
        return json.loads(Path(status_file).read_text()) if status_file else {}
    except (FileNotFoundError, ValueError):
        return {}


def _tail(log_file: str) -> str:
    try:
        lines = [ln for ln in Path(log_file).read_text().splitlines() if ln.strip()]
    except FileNotFoundError:
        return "no log"
    return lines[-1] if lines else "no log line"
