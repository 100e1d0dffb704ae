"""Change streams on every mapped collection, opened before the bulk read: each batch of events is reduced to
the `_id`s it changed (`mongo2pg.online_changes`: one row per document, the last operation and a sequence
number) and committed with every stream's resume token (`mongo2pg.online_streams`) in one transaction.

Why ids and not the events' documents: the change is applied later by reading the document as it is then
(or removing it when it is gone), so an event replayed after a crash marks the same id again and changes
nothing. A stream that cannot resume from its stored token (the server's history rolled past it) stops the
capture with one line naming the collection: that collection must be bulked again, never skipped."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg2
import pymongo.errors
from bson import json_util
from psycopg2 import sql
from psycopg2.extras import execute_values

from ..connect import pg_connect
from ..errors import ConfigError, ConnectionFailed
from ..migration.state import STATE
from ..ops.state_read import backlog
from ..redact import redact_text

# Server codes for a change stream whose resume point is gone: ChangeStreamHistoryLost, ChangeStreamFatalError,
# CappedPositionLost (real MongoDB; the lab's stand-in keeps ~1,000 events and answers an unknown token
# with nothing, which only a stored-token check on real MongoDB can tell).
HISTORY_LOST = {286, 280, 136}


def online_ddl() -> list[sql.Composable]:
    s = STATE
    return [
        sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(s),
        sql.SQL("CREATE SEQUENCE IF NOT EXISTS {}.online_seq").format(s),
        sql.SQL("""CREATE TABLE IF NOT EXISTS {}.online_streams (
            collection TEXT PRIMARY KEY, token JSONB, events BIGINT NOT NULL DEFAULT 0,
            last_event_at TIMESTAMPTZ, opened_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            updated_at TIMESTAMPTZ NOT NULL DEFAULT now())""").format(s),
        sql.SQL("""CREATE TABLE IF NOT EXISTS {}.online_changes (
            collection TEXT NOT NULL, source_id TEXT NOT NULL, op TEXT NOT NULL, seq BIGINT NOT NULL,
            changed_at TIMESTAMPTZ, PRIMARY KEY (collection, source_id))""").format(s),
        # Every document ever marked, with its last mark: kept after the change is applied, so a validation
        # at cutover can check again only what changed after its full pass (validation/since.py).
        sql.SQL("""CREATE TABLE IF NOT EXISTS {}.online_seen (
            collection TEXT NOT NULL, source_id TEXT NOT NULL, seq BIGINT NOT NULL,
            PRIMARY KEY (collection, source_id))""").format(s),
    ]


def mapped_collections(mapping) -> list[str]:
    """The collections a capture watches: every one the mapping reads."""
    return sorted({t.collection for t in mapping.tables.values()})


def id_key(_id: Any) -> str:
    """A document's `_id` as stored in online_changes: canonical extended JSON, any BSON type, reversible."""
    return json_util.dumps(_id, json_options=json_util.CANONICAL_JSON_OPTIONS)


def id_from_key(key: str) -> Any:
    return json_util.loads(key)


def _event_time(event: dict) -> datetime | None:
    t = event.get("clusterTime") or event.get("wallTime")
    if t is None:
        return None
    if hasattr(t, "as_datetime"):  # a BSON Timestamp (real MongoDB)
        return t.as_datetime()
    return t if t.tzinfo else t.replace(tzinfo=UTC)


@dataclass
class Batch:
    ids: dict[tuple[str, str], tuple[str, datetime | None]] = field(default_factory=dict)
    tokens: dict[str, Any] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)
    last_at: dict[str, datetime] = field(default_factory=dict)

    def add(self, collection: str, event: dict, token: Any) -> None:
        at = _event_time(event)
        key = event.get("documentKey", {}).get("_id")
        if key is not None:  # invalidate/drop events carry none: their token still moves
            self.ids[(collection, id_key(key))] = (event.get("operationType", "?"), at)
        self.tokens[collection] = token
        self.events[collection] = self.events.get(collection, 0) + 1
        if at:
            self.last_at[collection] = at

    def __len__(self) -> int:
        return sum(self.events.values())


class Capture:
    """Streams on `collections` of `db` (a pymongo Database), state in the PostgreSQL at `pg_uri`."""

    def __init__(self, pg_uri: str, db, collections: list[str], batch: int = 1000, flush_seconds: float = 0.5,
                 reanchor_seconds: float = 30):
        self.pg_uri, self.db, self.collections = pg_uri, db, collections
        self.batch, self.flush_seconds, self.reanchor_seconds = batch, flush_seconds, reanchor_seconds
        self.anchored_at = time.monotonic()
        self.streams: dict[str, Any] = {}
        self.conn = None
        self.captured_events = 0
        self.event_at = time.monotonic()  # when the last batch of events committed (or the capture began)
        self.reopened = 0  # streams the server closed, reopened from their last token
        self.lag_seconds: float | None = None

    def open(self) -> dict[str, str]:
        """Each stream from its stored token, or from now (its opening token stored at once, so a capture
        killed before its first event still resumes from where the bulk read began). Returns how each opened."""
        self.conn = pg_connect(self.pg_uri, "mongo2pg online capture")
        with self.conn.cursor() as cur:
            for stmt in online_ddl():
                cur.execute(stmt)
            cur.execute(sql.SQL("SELECT collection, token FROM {}.online_streams").format(STATE))
            stored = dict(cur.fetchall())
        self.conn.commit()
        how = {}
        for name in self.collections:
            token = stored.get(name)
            self.streams[name] = self._watch(name, token)
            if token is None:
                self._store_tokens({name: self.streams[name].resume_token})
                how[name] = "from now"
            else:
                how[name] = "resumed from its stored token"
        return how

    def _watch(self, name: str, token: Any):
        try:
            # a short server-side wait: one idle stream must not hold up the others' events
            return self.db[name].watch(resume_after=token, batch_size=self.batch, max_await_time_ms=20)
        except pymongo.errors.OperationFailure as exc:
            raise self._lost(name, exc) from None

    def _lost(self, name: str, exc: Exception) -> Exception:
        code = getattr(exc, "code", None)
        if code in HISTORY_LOST:
            return ConfigError(f"collection {name}: its change stream cannot resume from the stored token (the "
                               f"server's history has rolled past it, code {code}): bulk {name} again, then "
                               f"`mongo2pg online reset --collection {name}` and start the capture")
        return ConfigError(f"collection {name}: change stream failed: {exc}")

    def step(self) -> int:
        """Read events until a batch is full or flush_seconds pass, then commit them with the tokens; every
        reanchor_seconds without an event, the streams reopened from their last tokens."""
        if self.reanchor_seconds and time.monotonic() - self.anchored_at >= self.reanchor_seconds:
            self._reanchor()
        batch = Batch()
        deadline = time.monotonic() + self.flush_seconds
        while len(batch) < self.batch and time.monotonic() < deadline:
            got = 0
            for name in list(self.streams):
                got += self._read(name, batch)
            if not got:
                if batch.events:
                    break  # every stream read to its end: commit now
                time.sleep(0.02)
        if batch.events:
            self._commit(batch)
            self.anchored_at = time.monotonic()
        return len(batch)

    def _read(self, name: str, batch: Batch) -> int:
        """The stream's waiting events into the batch (all of them, up to its room: one getMore brings many)."""
        stream, n = self.streams[name], 0
        while len(batch) < self.batch:
            try:
                event = stream.try_next()
            except pymongo.errors.OperationFailure as exc:
                raise self._lost(name, exc) from None
            if event is None:
                if not stream.alive:
                    # the server closed the cursor (nx-27017 after a restart answers its getMore with cursor 0;
                    # real MongoDB says CursorNotFound, which pymongo resumes itself): reopen it from the last
                    # token read, whose events this batch holds
                    self.streams[name] = self._watch(name, stream.resume_token)
                    self.reopened += 1
                return n
            batch.add(name, event, stream.resume_token)
            n += 1
        return n

    def _reanchor(self) -> None:
        """Every stream's high-water token stored, then the stream closed and opened again from it.

        Stored: a collection nobody writes keeps its opening token otherwise, and once the oplog rolls past
        that token the stream cannot resume although it missed nothing (MongoDB's SERVER-35740: hence the
        postBatchResumeToken servers report with every batch, which pymongo keeps as resume_token). No batch
        is pending here (step commits before it returns), so every event before these tokens is stored.
        Reopened: a stream whose connection broke can go quiet without an error (found with nx-27017 killed
        mid-getMore: pymongo's cursor neither resumed nor died); one aggregate a collection, and an event read
        twice marks the same id."""
        self._store_tokens({name: stream.resume_token for name, stream in self.streams.items()
                            if stream.resume_token is not None})
        for name, stream in list(self.streams.items()):
            token = stream.resume_token
            stream.close()
            self.streams[name] = self._watch(name, token)
        self.anchored_at = time.monotonic()

    def _commit(self, batch: Batch) -> None:
        with self.conn.cursor() as cur:
            if batch.ids:
                execute_values(cur, sql.SQL("""WITH marked AS (
                    INSERT INTO {s}.online_changes (collection, source_id, op, seq, changed_at)
                    SELECT c, i, o, nextval({q}), t::timestamptz FROM (VALUES %s) v(c, i, o, t)
                    ON CONFLICT (collection, source_id) DO UPDATE
                    SET op = EXCLUDED.op, seq = EXCLUDED.seq, changed_at = EXCLUDED.changed_at
                    RETURNING collection, source_id, seq)
                    INSERT INTO {s}.online_seen SELECT * FROM marked ON CONFLICT (collection, source_id) DO UPDATE
                    SET seq = EXCLUDED.seq""").format(s=STATE, q=sql.Literal("mongo2pg.online_seq")).as_string(cur),
                    [(c, i, op, at.isoformat() if at else None) for (c, i), (op, at) in batch.ids.items()])
            self._store_tokens(batch.tokens, cur=cur, events=batch.events, last_at=batch.last_at)
        self.conn.commit()
        self.captured_events += len(batch)
        self.event_at = time.monotonic()
        if batch.last_at:
            self.lag_seconds = max(0.0, (datetime.now(UTC) - max(batch.last_at.values())).total_seconds())

    def _store_tokens(self, tokens: dict[str, Any], cur=None, events=None, last_at=None) -> None:
        own = cur is None
        cur = cur or self.conn.cursor()
        for name, token in tokens.items():
            cur.execute(sql.SQL("""INSERT INTO {}.online_streams (collection, token, events, last_event_at)
                VALUES (%s, %s, %s, %s) ON CONFLICT (collection) DO UPDATE
                SET token = EXCLUDED.token, events = {}.online_streams.events + EXCLUDED.events,
                    last_event_at = coalesce(EXCLUDED.last_event_at, {}.online_streams.last_event_at),
                    updated_at = now()""").format(STATE, STATE, STATE),
                (name, json.dumps(token) if token is not None else None, (events or {}).get(name, 0),
                 (last_at or {}).get(name)))
        if own:
            self.conn.commit()
            cur.close()

    def run(self, until: Callable[[], bool], progress: Callable[[str], None] | None = None,
            retry_seconds: float = 300, each: Callable[[], None] | None = None) -> int:
        """Steps until `until()`, `each()` after every step (the service's catch-up); a lost source or target
        is waited for (up to retry_seconds) and the streams reopened from the committed tokens: the events
        after them are read again."""
        lost_since: float | None = None
        last_line = time.monotonic()
        while not until():
            try:
                if self.conn is None or self.conn.closed:
                    self.open()
                self.step()
                if each:
                    each()
                lost_since = None
            except (pymongo.errors.AutoReconnect, pymongo.errors.ServerSelectionTimeoutError,
                    psycopg2.OperationalError, psycopg2.InterfaceError, ConnectionFailed) as exc:
                lost_since = lost_since or time.monotonic()
                if time.monotonic() - lost_since > retry_seconds:
                    raise ConnectionFailed(f"online capture: connection lost for {retry_seconds:g} s: "
                                           f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
                if progress:
                    why = redact_text(str(exc).strip().splitlines()[0] if str(exc).strip() else "")
                    progress(f"connection lost ({type(exc).__name__}: {why}), retrying from the stored tokens")
                self.close()
                time.sleep(1)
                continue
            if progress and time.monotonic() - last_line >= 5:
                last_line = time.monotonic()
                progress(self.line())
        return self.captured_events

    def idle_seconds(self) -> float:
        """Seconds since the last event was committed: a drain ends when nothing has come for a while."""
        return time.monotonic() - self.event_at

    def line(self) -> str:
        lag = f"{self.lag_seconds:.1f}" if self.lag_seconds is not None else "-"
        reopened = f"; {self.reopened} streams reopened from their last token (closed by the server)" if self.reopened else ""
        return (f"online capture: {self.captured_events} events captured; {lag} s behind the source at the last "
                f"event{reopened}")

    def close(self) -> None:
        for s in self.streams.values():
            try:
                s.close()
            except pymongo.errors.PyMongoError:
                pass
        self.streams = {}
        if self.conn is not None and not self.conn.closed:
            try:
                self.conn.close()
            except psycopg2.Error:
                pass
        self.conn = None


def status(pg_uri: str) -> dict[str, Any]:
    """Documents waiting for the catch-up (marked, not yet applied), the last event's time and its age; per
    collection the same with the events captured."""
    conn = pg_connect(pg_uri, "mongo2pg online status")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('mongo2pg.online_streams') IS NOT NULL")
            if not cur.fetchone()[0]:
                return {"capturing": False, "collections": {}}
            cur.execute(sql.SQL("""SELECT s.collection, s.events, s.last_event_at, s.updated_at,
                                          (SELECT count(*) FROM {}.online_changes c WHERE c.collection = s.collection)
                                   FROM {}.online_streams s ORDER BY s.collection""").format(STATE, STATE))
            rows = cur.fetchall()
            _, behind = backlog(cur)
    finally:
        conn.close()
    last = max((a for _, _, a, _, _ in rows if a), default=None)
    return {"capturing": True, "documents_waiting": sum(n for *_, n in rows),
            "seconds_behind": behind,
            "last_event_at": last.isoformat() if last else None,
            "seconds_since_last_event": round((datetime.now(UTC) - last).total_seconds(), 1) if last else None,
            "collections": {c: {"events": e, "last_event_at": a.isoformat() if a else None,
                                "token_stored_at": u.isoformat(), "documents_waiting": n}
                            for c, e, a, u, n in rows}}


def reset(pg_uri: str, collection: str | None) -> None:
    """Forget a collection's stored token and changes (after it was bulked again), or every collection's (None:
    a new online migration, the bulk starting over): its stream opens from now."""
    conn = pg_connect(pg_uri, "mongo2pg online reset")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('mongo2pg.online_streams') IS NOT NULL")
            if cur.fetchone()[0]:
                for t in ("online_streams", "online_changes", "online_seen"):
                    cur.execute(sql.SQL("DELETE FROM {}.{} WHERE %s IS NULL OR collection = %s").format(
                        STATE, sql.Identifier(t)), (collection, collection))
        conn.commit()
    finally:
        conn.close()
