"""The migration's state tables (schema `mongo2pg`) as a monitor reads them: psycopg2 only, shipped with the
monitor to the database host (roles/monitoring: monitoring_engine_files)."""

from __future__ import annotations

from typing import Any

STATE_SCHEMA = "mongo2pg"


def readable_state_table(cur, table: str) -> bool:
    """Does `mongo2pg.<table>` exist, and may this role read it? (A monitoring role may lack the schema's USAGE:
    to_regclass of a name in it would fail.)"""
    cur.execute("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = %s AND has_schema_privilege(oid, 'USAGE'))",
                (STATE_SCHEMA,))
    if not cur.fetchone()[0]:
        return False
    cur.execute("SELECT coalesce(has_table_privilege(to_regclass(%s), 'SELECT'), false)", (f"{STATE_SCHEMA}.{table}",))
    return cur.fetchone()[0]


def backlog(cur) -> tuple[int, float]:
    """An online migration's catch-up: documents waiting, and the seconds the target is behind the source (the
    age of the oldest change not yet applied; 0 when none waits)."""
    cur.execute(f"SELECT count(*), extract(epoch FROM now() - min(changed_at)) FROM {STATE_SCHEMA}.online_changes")
    waiting, behind = cur.fetchone()
    return waiting, round(float(behind or 0.0), 1)


def readable_backlog(cur) -> dict[str, Any] | None:
    """The catch-up's backlog for a monitor: None where no online migration's capture is, or this role may not
    read it (monitoring must not fail on it)."""
    if not readable_state_table(cur, "online_changes"):
        return None
    waiting, behind = backlog(cur)
    return {"documents_waiting": waiting, "seconds_behind": behind}
