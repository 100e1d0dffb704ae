"""Change capture from go-live (for the lossless rollback): a trigger on every migrated table and junction
records which row changed (table, primary key or the junction's two ids, operation, time) in
`mongo2pg.changes`. `mongo2pg reverse-sync` reads it, rebuilds those documents in MongoDB and marks each
change consumed.

Plain row triggers: any PostgreSQL the application can write to, no superuser, no `wal_level=logical`,
no replication slot to babysit. The trigger function runs as its owner (SECURITY DEFINER, the migration
role), so the application's role needs no privilege on the `mongo2pg` schema.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from psycopg2 import sql

from ..ops.state_read import readable_state_table

if TYPE_CHECKING:  # not imported at run time: monitoring ships this file to a host without PyYAML
    from ..mapping import Mapping

SCHEMA = sql.Identifier("mongo2pg")
TRIGGER = "mongo2pg_capture"

_DDL = """
CREATE SCHEMA IF NOT EXISTS mongo2pg;
CREATE TABLE IF NOT EXISTS mongo2pg.changes (
    seq BIGSERIAL PRIMARY KEY, tbl TEXT NOT NULL, pk TEXT, left_id UUID, right_id UUID, op CHAR(1) NOT NULL,
    changed_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(), consumed_at TIMESTAMPTZ);
-- pk is a row's id as text: a UUID, or a string id kept as it is (a capture installed before held UUIDs only).
DO $do$ BEGIN
    IF (SELECT data_type FROM information_schema.columns WHERE table_schema = 'mongo2pg' AND table_name = 'changes'
        AND column_name = 'pk') = 'uuid' THEN
        ALTER TABLE mongo2pg.changes ALTER COLUMN pk TYPE TEXT;
    END IF;
END $do$;
CREATE INDEX IF NOT EXISTS changes_waiting ON mongo2pg.changes (seq) WHERE consumed_at IS NULL;
-- A row the application created has a random UUID: the ObjectId its document gets, once, for every reference.
CREATE TABLE IF NOT EXISTS mongo2pg.reverse_ids (uuid UUID PRIMARY KEY, oid TEXT NOT NULL UNIQUE);
CREATE OR REPLACE FUNCTION mongo2pg.capture_row() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    new_row jsonb := CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END;
    old_row jsonb := CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END;
BEGIN
    IF TG_NARGS = 1 THEN  -- an entity table: its primary key; a key changed by an UPDATE: both keys
        IF new_row IS NOT NULL THEN
            INSERT INTO mongo2pg.changes (tbl, pk, op) VALUES (TG_TABLE_NAME, new_row->>TG_ARGV[0], left(TG_OP, 1));
        END IF;
        IF old_row IS NOT NULL AND (new_row IS NULL OR new_row->TG_ARGV[0] <> old_row->TG_ARGV[0]) THEN
            INSERT INTO mongo2pg.changes (tbl, pk, op) VALUES (TG_TABLE_NAME, old_row->>TG_ARGV[0], 'D');
        END IF;
    ELSE  -- a junction: the two ids whose documents hold the link, before and after
        IF new_row IS NOT NULL THEN
            INSERT INTO mongo2pg.changes (tbl, left_id, right_id, op)
            VALUES (TG_TABLE_NAME, (new_row->>TG_ARGV[0])::uuid, (new_row->>TG_ARGV[1])::uuid, left(TG_OP, 1));
        END IF;
        IF old_row IS NOT NULL AND (new_row IS NULL OR new_row <> old_row) THEN
            INSERT INTO mongo2pg.changes (tbl, left_id, right_id, op)
            VALUES (TG_TABLE_NAME, (old_row->>TG_ARGV[0])::uuid, (old_row->>TG_ARGV[1])::uuid, 'D');
        END IF;
    END IF;
    RETURN NULL;
END
$fn$;
"""


def _targets(mapping: Mapping) -> list[tuple[str, list[str]]]:
    """Every migrated table with the trigger's arguments: its primary key, or a junction's two columns."""
    return ([(t.name, [t.pk.name]) for t in mapping.tables.values()]
            + [(j.name, [j.left.column, j.right.column]) for j in mapping.junctions.values()])


def install(conn, mapping: Mapping, readers: tuple[str, ...] = ("pg_monitor",)) -> tuple[int, int]:
    """Create the change log and a trigger on every table (idempotent); `readers` may count what waits
    (monitoring). Returns (tables captured, triggers created now)."""
    targets = _targets(mapping)
    created = 0
    with conn.cursor() as cur:
        cur.execute(_DDL)
        present = _captured(cur)
        for name, args in targets:
            if name in present:
                continue
            cur.execute(sql.SQL("CREATE TRIGGER {} AFTER INSERT OR UPDATE OR DELETE ON {} FOR EACH ROW "
                                "EXECUTE FUNCTION mongo2pg.capture_row({})").format(
                sql.Identifier(TRIGGER), sql.Identifier(name), sql.SQL(", ").join(map(sql.Literal, args))))
            created += 1
        for role in readers:
            cur.execute(sql.SQL("GRANT USAGE ON SCHEMA mongo2pg TO {}").format(sql.Identifier(role)))
            cur.execute(sql.SQL("GRANT SELECT ON mongo2pg.changes TO {}").format(sql.Identifier(role)))
    conn.commit()
    return len(targets), created


def remove(conn) -> None:
    """Drop the capture triggers (a migration loads without them); the change log stays for whoever reads it."""
    with conn.cursor() as cur:
        for name in _captured(cur):
            cur.execute(sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(sql.Identifier(TRIGGER), sql.Identifier(name)))
    conn.commit()


def _captured(cur) -> set[str]:
    """The tables of this schema that carry the capture trigger."""
    cur.execute("SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "WHERE t.tgname = %s AND c.relnamespace = current_schema()::regnamespace", (TRIGGER,))
    return {r[0] for r in cur.fetchall()}


def waiting(cur) -> int | None:
    """Changes not yet applied to MongoDB (None: capture was never installed here, or this role may not
    read it)."""
    if not readable_state_table(cur, "changes"):
        return None
    cur.execute("SELECT count(*) FROM mongo2pg.changes WHERE consumed_at IS NULL")
    return cur.fetchone()[0]
