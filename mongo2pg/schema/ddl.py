"""DDL from the mapping: apply and finalize.

`apply` creates enums, tables and primary keys; `finalize` creates the secondary
indexes and foreign keys after the bulk load, as pgloader does. Both are safe to
rerun. Every identifier goes through psycopg2.sql.Identifier.
"""

from __future__ import annotations

import psycopg2
from psycopg2 import sql

from ..connect import TableJob, run_on_connections
from ..errors import Mongo2PgError
from ..mapping import Column, Mapping
from ..stages import Stages

PG_TYPES = {"uuid": "UUID", "text": "TEXT", "integer": "INTEGER", "bigint": "BIGINT", "double": "DOUBLE PRECISION",
            "boolean": "BOOLEAN", "timestamp": "TIMESTAMP(3)", "jsonb": "JSONB", "text[]": "TEXT[]",
            "uuid[]": "UUID[]", "integer[]": "INTEGER[]", "bytea": "BYTEA"}


class ConstraintRefused(Mongo2PgError):
    """PostgreSQL refused an index or foreign key of the mapping (after the load). Exit code 1: the data
    or the target holds what the constraint forbids; the loaded rows and every checkpoint stay, so the
    run resumes at the constraints once the cause is fixed."""

    def __init__(self, table: str, constraint: str, exc: psycopg2.Error):
        reason = (exc.pgerror or str(exc)).strip().splitlines()
        detail = getattr(exc.diag, "message_detail", None)
        self.table, self.constraint = table, constraint
        super().__init__(f"table {table}: PostgreSQL refused {constraint}: {reason[0] if reason else type(exc).__name__}"
                         + (f" ({detail})" if detail else "")
                         + " -- fix those rows in the target (or their documents and rerun with --fresh), then rerun: "
                         "the load is kept and the run resumes at the indexes and foreign keys")


def column_type(col: Column) -> sql.Composable:
    if col.type == "enum":
        return sql.Identifier(col.enum)
    return sql.SQL(PG_TYPES[col.type])


def reference_type(col: Column) -> str:
    """The type as the reference schema file spells it (enums in double quotes)."""
    return f'"{col.enum}"' if col.type == "enum" else PG_TYPES[col.type]


def apply_statements(mapping: Mapping, existing_enums: set[str]) -> list[sql.Composable]:
    out: list[sql.Composable] = []
    for name, values in mapping.enums.items():
        if name not in existing_enums:
            out.append(sql.SQL("CREATE TYPE {} AS ENUM ({})").format(
                sql.Identifier(name), sql.SQL(", ").join(sql.Literal(v) for v in values)))
    for t in mapping.tables.values():
        cols = []
        for c in t.columns:
            parts = [sql.Identifier(c.name), column_type(c)]
            if c.not_null:
                parts.append(sql.SQL("NOT NULL"))
            if c.default is not None:
                # Validated on load against a literal-only pattern (mapping/parse.py: _SAFE_DEFAULT).
                parts.append(sql.SQL("DEFAULT " + c.default))
            cols.append(sql.SQL(" ").join(parts))
        cols.append(sql.SQL("CONSTRAINT {} PRIMARY KEY ({})").format(
            sql.Identifier(f"{t.name}_pkey"), sql.Identifier(t.pk.name)))
        out.append(sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(sql.Identifier(t.name), sql.SQL(", ").join(cols)))
    for j in mapping.junctions.values():
        out.append(sql.SQL("CREATE TABLE IF NOT EXISTS {} ({} UUID NOT NULL, {} UUID NOT NULL, CONSTRAINT {} PRIMARY KEY ({}, {}))").format(
            sql.Identifier(j.name), sql.Identifier(j.left.column), sql.Identifier(j.right.column),
            sql.Identifier(j.pkey), sql.Identifier(j.left.column), sql.Identifier(j.right.column)))
    return out


def existing_enums(cur) -> set[str]:
    cur.execute("SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
                "WHERE t.typtype = 'e' AND n.nspname = current_schema()")
    return {r[0] for r in cur.fetchall()}


def apply(conn, mapping: Mapping) -> int:
    """Create the enums, tables and primary keys. Returns statements run."""
    with conn.cursor() as cur:
        stmts = apply_statements(mapping, existing_enums(cur))
        for s in stmts:
            cur.execute(s)
    conn.commit()
    return len(stmts)


def finalize_statements(conn, mapping: Mapping, unique: bool = True) -> list[tuple[str, sql.Composable]]:
    """Indexes and foreign keys that do not exist yet, as (name, statement); a foreign key is added
    NOT VALID (no scan, a moment's lock) and validated by its own statement (validate_statements).
    `unique` False leaves the unique indexes out (an online bulk: the app may still write a duplicate)."""
    with conn.cursor() as cur:
        cur.execute("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")
        have_idx = {r[0] for r in cur.fetchall()}
        cur.execute("SELECT conname FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
                    "WHERE c.contype = 'f' AND n.nspname = current_schema()")
        have_fk = {r[0] for r in cur.fetchall()}
    out: list[tuple[str, sql.Composable]] = []
    for table, idx in mapping.indexes():
        if idx.name not in have_idx and (unique or not idx.unique):
            out.append((idx.name, sql.SQL("CREATE {}INDEX IF NOT EXISTS {} ON {} ({})").format(
                sql.SQL("UNIQUE " if idx.unique else ""), sql.Identifier(idx.name), sql.Identifier(table),
                sql.SQL(", ").join(sql.Identifier(c) for c in idx.columns))))
    for fk in mapping.foreign_keys():
        if fk["name"] not in have_fk:
            out.append((fk["name"], sql.SQL(
                "ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({}) ON DELETE {} ON UPDATE {} "
                "NOT VALID").format(
                sql.Identifier(fk["table"]), sql.Identifier(fk["name"]), sql.Identifier(fk["columns"][0]),
                sql.Identifier(fk["references"]), sql.Identifier(fk["ref_columns"][0]),
                sql.SQL(fk["on_delete"]), sql.SQL(fk["on_update"]))))
    return out


def validate_statements(conn, mapping: Mapping) -> list[tuple[str, sql.Composable]]:
    """VALIDATE for every foreign key not yet validated, except references kept dangling by policy
    (on_dangling: keep), whose foreign key stays NOT VALID."""
    keep = {f"{t.name}_{c.name}_fkey" for t in mapping.tables.values() for c in t.columns
            if c.references and c.on_dangling == "keep"}
    with conn.cursor() as cur:
        cur.execute("SELECT conname FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
                    "WHERE c.contype = 'f' AND NOT c.convalidated AND n.nspname = current_schema()")
        pending = {r[0] for r in cur.fetchall()}
    return [(fk["name"], sql.SQL("ALTER TABLE {} VALIDATE CONSTRAINT {}").format(
        sql.Identifier(fk["table"]), sql.Identifier(fk["name"])))
        for fk in mapping.foreign_keys() if fk["name"] in pending and fk["name"] not in keep]


def finalize(conn, mapping: Mapping, progress=None, connect=None, workers: int = 1,
             stages: Stages | None = None, analyze: bool = False, unique: bool = True) -> int:
    """Create the missing indexes and foreign keys, and (`analyze`) ANALYZE every table. The foreign keys
    are added NOT VALID one at a time (adding takes a lock on both tables, so two at once could deadlock);
    then index builds, foreign key validations and ANALYZEs, the slow parts, run side by side on `workers`
    connections from `connect` (when given), the biggest tables' first, so that the last to finish are
    short. A validation or an ANALYZE locks only its own table, and never runs beside another job on it
    (connect.TableJob), so none of them waits or deadlocks. `stages`, when given, gets each kind's
    connection-seconds. `unique` False: the unique indexes are left for later (finalize_statements)."""
    stages = Stages() if stages is None else stages
    stmts = finalize_statements(conn, mapping, unique)
    fk_names = {fk["name"] for fk in mapping.foreign_keys()}
    tables = {fk["name"]: fk["table"] for fk in mapping.foreign_keys()}
    tables.update({idx.name: table for table, idx in mapping.indexes()})
    for name, stmt in stmts:
        if name in fk_names:
            _statement_job(name, tables[name], stmt, stages, "finalize: foreign keys added (NOT VALID)")(conn)
    jobs = [_statement_job(n, tables[n], s, stages, "finalize: index builds", shared=True)
            for n, s in stmts if n not in fk_names]
    jobs += [_statement_job(n, tables[n], s, stages, "finalize: foreign key validation")
             for n, s in validate_statements(conn, mapping)]
    shown = {job.name for job in jobs}  # progress names the index and foreign key work, not the ANALYZEs
    if analyze:
        jobs += [_statement_job(f"ANALYZE {t}", t, sql.SQL("ANALYZE {}").format(sql.Identifier(t)), stages,
                                "finalize: ANALYZE") for t in list(mapping.tables) + list(mapping.junctions)]
    size = _table_sizes(conn)
    jobs.sort(key=lambda job: -size.get(job.table, 0))  # stable: a table's index builds, validations, ANALYZE
    conn.commit()
    done = run_on_connections(connect, jobs, workers) if connect else (job(conn) for job in jobs)
    for name in done:
        if progress and name in shown:
            progress(name)
    return len(stmts)


def _table_sizes(conn) -> dict[str, int]:
    """Bytes of each table of the current schema (heap and TOAST)."""
    with conn.cursor() as cur:
        cur.execute("SELECT c.relname, pg_table_size(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = current_schema() AND c.relkind = 'r'")
        return dict(cur.fetchall())


def _statement_job(name: str, table: str, stmt: sql.Composable, stages: Stages, stage: str,
                   shared: bool = False) -> TableJob:
    """The job running `stmt` on `table` (its lock `shared`, as CREATE INDEX's is), timed under `stage`;
    it returns `name`."""
    def run(conn) -> str:
        try:
            with stages.timed(stage), conn.cursor() as cur:
                cur.execute(stmt)
                conn.commit()
        except (psycopg2.DataError, psycopg2.IntegrityError, psycopg2.ProgrammingError,
                psycopg2.errors.InsufficientPrivilege) as exc:
            conn.rollback()
            raise ConstraintRefused(table, name, exc) from None
        return name
    return TableJob(table, shared, run, name)


def unfinalize(conn, mapping: Mapping) -> None:
    """Drop the mapping's foreign keys and secondary indexes: the state before a bulk load.

    A fresh load into a finalized schema would otherwise check every row against foreign keys
    whose parent tables load in parallel (and maintain every index row by row).
    """
    with conn.cursor() as cur:
        for fk in mapping.foreign_keys():
            cur.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}").format(
                sql.Identifier(fk["table"]), sql.Identifier(fk["name"])))
        for _table, idx in mapping.indexes():
            cur.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(idx.name)))


# ---- introspection ------------------------------------------------------------------------
