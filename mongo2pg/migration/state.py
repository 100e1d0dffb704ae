"""The run's state in the target database (schema `mongo2pg`): its DDL, the checkpoints, the rejects,
the run's keys (mapping digest, layout, ranges, summary), the one-run-at-a-time lock, and `status`.

Everything a rerun needs to resume lives here, written in the same transaction as the data it
describes; `migration-checkpoint.json` is only a mirror for humans.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from psycopg2 import sql

from ..connect import pg_connect
from ..errors import ConfigError
from ..issues import REJECT_COLUMNS, Issue
from ..mapping import Mapping
from ..ops.state_read import STATE_SCHEMA

STATE = sql.Identifier(STATE_SCHEMA)
# The shape of this state; a run begun under another layout cannot resume.
STATE_LAYOUT = "2"
_STATE_TABLES = ("checkpoint", "rejects", "link_stage", "run")


def state_ddl() -> list[sql.Composable]:
    s = STATE
    return [
        sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(s),
        sql.SQL("""CREATE TABLE IF NOT EXISTS {}.run (
            key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at TIMESTAMPTZ NOT NULL DEFAULT now())""").format(s),
        sql.SQL("""CREATE TABLE IF NOT EXISTS {}.checkpoint (
            step TEXT PRIMARY KEY, position BIGINT NOT NULL DEFAULT 0, last_id TEXT,
            loaded BIGINT NOT NULL DEFAULT 0, rejected BIGINT NOT NULL DEFAULT 0, fixups BIGINT NOT NULL DEFAULT 0,
            done BOOLEAN NOT NULL DEFAULT false, seconds DOUBLE PRECISION NOT NULL DEFAULT 0,
            updated_at TIMESTAMPTZ NOT NULL DEFAULT now())""").format(s),
        sql.SQL("""CREATE TABLE IF NOT EXISTS {}.rejects (
            seq BIGSERIAL PRIMARY KEY, severity TEXT NOT NULL, tbl TEXT NOT NULL, source_id TEXT, uuid TEXT,
            reason TEXT NOT NULL, field TEXT, message TEXT NOT NULL, document TEXT,
            logged_at TIMESTAMPTZ NOT NULL DEFAULT now())""").format(s),
        # One partition per junction (link_stage_partitions): building a junction reads only its own links.
        sql.SQL("""CREATE TABLE IF NOT EXISTS {}.link_stage (
            junction TEXT NOT NULL, left_id UUID NOT NULL, right_id UUID NOT NULL,
            source_collection TEXT NOT NULL, source_field TEXT NOT NULL) PARTITION BY LIST (junction)""").format(s),
    ]


def link_stage_partitions(mapping: Mapping) -> list[sql.Composable]:
    """A partition of the link stage per junction, named by a digest of the junction's name (any length)."""
    return [sql.SQL("CREATE TABLE IF NOT EXISTS {}.{} PARTITION OF {}.link_stage FOR VALUES IN ({})").format(
        STATE, sql.Identifier("link_stage_" + hashlib.sha256(name.encode()).hexdigest()[:16]), STATE,
        sql.Literal(name)) for name in mapping.junctions]


def create_state(conn, mapping: Mapping) -> None:
    """The state schema and its tables, when missing (safe to rerun)."""
    with conn.cursor() as cur:
        for stmt in state_ddl() + link_stage_partitions(mapping):
            cur.execute(stmt)
    conn.commit()


# ---- checkpoints -------------------------------------------------------------------------------

@dataclass
class Checkpoint:
    step: str
    position: int = 0
    last_id: str | None = None
    loaded: int = 0
    rejected: int = 0
    fixups: int = 0
    done: bool = False
    seconds: float = 0.0


def read_checkpoint(cur, step: str) -> Checkpoint:
    cur.execute(sql.SQL("SELECT position, last_id, loaded, rejected, fixups, done, seconds FROM {}.checkpoint "
                        "WHERE step = %s").format(STATE), (step,))
    row = cur.fetchone()
    return Checkpoint(step, *row) if row else Checkpoint(step)


def write_checkpoint(cur, cp: Checkpoint) -> None:
    cur.execute(sql.SQL("""INSERT INTO {}.checkpoint (step, position, last_id, loaded, rejected, fixups, done, seconds,
                                                     updated_at)
                           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, now())
                           ON CONFLICT (step) DO UPDATE SET position = EXCLUDED.position, last_id = EXCLUDED.last_id,
                             loaded = EXCLUDED.loaded, rejected = EXCLUDED.rejected, fixups = EXCLUDED.fixups,
                             done = EXCLUDED.done, seconds = EXCLUDED.seconds, updated_at = now()""").format(STATE),
                (cp.step, cp.position, cp.last_id, cp.loaded, cp.rejected, cp.fixups, cp.done, cp.seconds))


# ---- rejects -----------------------------------------------------------------------------------

def insert_issues(cur, issues: list[Issue]) -> None:
    if not issues:
        return
    cur.copy_expert(sql.SQL("COPY {}.rejects ({}) FROM STDIN").format(
        STATE, sql.SQL(", ").join(sql.Identifier(c) for c in REJECT_COLUMNS)),
        io.StringIO("".join(i.copy_line() for i in issues)))


def stored_issues(conn) -> Iterator[Issue]:
    """Every stored issue in the order it was recorded (streamed: there can be many)."""
    with conn.cursor(name="m2p_rejects") as cur:
        cur.itersize = 5000
        cur.execute(sql.SQL("SELECT {} FROM {}.rejects ORDER BY seq").format(
            sql.SQL(", ").join(sql.Identifier(c) for c in REJECT_COLUMNS), STATE))
        for row in cur:
            yield Issue(*row)
    conn.rollback()


def reject_counts(cur) -> dict[tuple[str, str], int]:
    """(table, severity) -> how many issues are stored."""
    cur.execute(sql.SQL("SELECT tbl, severity, count(*) FROM {}.rejects GROUP BY 1, 2").format(STATE))
    return {(t, s): n for t, s, n in cur.fetchall()}


# ---- the run's keys ------------------------------------------------------------------------------

def get_key(cur, key: str) -> str | None:
    cur.execute(sql.SQL("SELECT value FROM {}.run WHERE key = %s").format(STATE), (key,))
    row = cur.fetchone()
    return row[0] if row else None


def set_key(cur, key: str, value: str) -> None:
    cur.execute(sql.SQL("INSERT INTO {}.run (key, value) VALUES (%s, %s) ON CONFLICT (key) DO UPDATE "
                        "SET value = EXCLUDED.value, updated_at = now()").format(STATE), (key, value))


def prepare(conn, mapping: Mapping, fresh: bool, source_label: str, empty_targets) -> None:
    """Start a run, or check that the stored one can resume: same mapping, same state layout, and no rows
    in the target that no checkpoint accounts for. With `fresh`, the state is emptied first and
    `empty_targets(cur)` empties the target tables."""
    targets = [sql.Identifier(t) for t in list(mapping.tables) + list(mapping.junctions)]
    with conn.cursor() as cur:
        if fresh:
            empty_targets(cur)
            for t in _STATE_TABLES:
                cur.execute(sql.SQL("TRUNCATE {}.{}").format(STATE, sql.Identifier(t)))
            cur.execute(sql.SQL("DROP TABLE IF EXISTS {}.junction_stage").format(STATE))  # layout 1's link stage
        digest, layout = get_key(cur, "mapping_digest"), get_key(cur, "state_layout")
        if digest is not None and digest != mapping.digest:
            raise ConfigError(f"the mapping changed since this run started (digest {digest} -> {mapping.digest}); "
                              "rerun with --fresh to start over with the new mapping")
        if digest is not None and layout != STATE_LAYOUT:
            raise ConfigError("this run was started by an earlier mongo2pg whose checkpoint layout differs (layout "
                              f"{layout or '1'}, this one writes {STATE_LAYOUT}): rerun with --fresh")
        if digest is None:
            for t in targets:
                cur.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(t))
                if cur.fetchone()[0]:
                    raise ConfigError(f"target table {t.string} already holds rows and there is no checkpoint of a "
                                      "run: rerun with --fresh to empty the target tables and start over")
            for key, value in (("mapping_digest", mapping.digest), ("state_layout", STATE_LAYOUT),
                               ("mapping", mapping.name), ("source", source_label),
                               ("started_at", datetime.now(UTC).isoformat())):
                set_key(cur, key, value)
    conn.commit()


def stored_summary(conn) -> dict[str, Any] | None:
    with conn.cursor() as cur:
        value = get_key(cur, "summary")
    conn.rollback()
    return json.loads(value) if value is not None else None


def store_summary(conn, summary: dict[str, Any]) -> None:
    with conn.cursor() as cur:
        set_key(cur, "summary", json.dumps(summary))
    conn.commit()


# ---- one run at a time -----------------------------------------------------------------------------

def lock_target(conn) -> None:
    """One migration per target database at a time: a session advisory lock, released when the run ends
    (or its process dies). A second run, e.g. started while an orphaned async job still works, is refused."""
    with conn.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(hashtext('mongo2pg.migrate'))")
        if not cur.fetchone()[0]:
            cur.execute("SELECT pid, backend_start::text FROM pg_stat_activity WHERE datname = current_database() "
                        "AND application_name = 'mongo2pg' AND pid <> pg_backend_pid() ORDER BY backend_start LIMIT 1")
            other = cur.fetchone()
            conn.rollback()
            raise ConfigError("another migration is running against this database"
                              + (f" (PostgreSQL backend pid {other[0]}, since {other[1]})" if other else "")
                              + ": wait for it to finish (its progress file shows it) or stop it, then rerun")
    conn.commit()


def status(pg_uri: str) -> dict[str, Any]:
    """What the target's state says: none, in-progress (with each step) or complete."""
    conn = pg_connect(pg_uri)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('mongo2pg.checkpoint') IS NOT NULL")
            if not cur.fetchone()[0]:
                return {"state": "none"}
            cur.execute(sql.SQL("SELECT step, position, loaded, rejected, fixups, done FROM {}.checkpoint "
                                "ORDER BY step").format(STATE))
            steps = [dict(zip(("step", "position", "loaded", "rejected", "fixups", "done"), r, strict=True))
                     for r in cur.fetchall()]
            cur.execute(sql.SQL("SELECT key, value FROM {}.run").format(STATE))
            run_info = dict(cur.fetchall())
        stored = json.loads(run_info["summary"]) if "summary" in run_info else None
        if stored is not None:  # a run that ended: complete only when every table reconciled
            state = "complete" if stored.get("status") == "complete" else stored.get("status", "unreconciled")
        else:
            state = "in-progress" if steps else "none"
        return {"state": state, "steps": steps, "run": {k: v for k, v in run_info.items() if k != "summary"}}
    finally:
        conn.close()
