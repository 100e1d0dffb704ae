"""After the load, set-based in PostgreSQL: each reference's dangling values settled by its policy,
and each junction table built from the links both sides' arrays staged. Every step is checkpointed."""

from __future__ import annotations

from psycopg2 import sql

from ..connect import run_on_connections
from ..ids import document_id, objectid_from_uuid
from ..issues import FIXUP, REJECT, Issue
from ..mapping import Column, Mapping, Table
from ..source.codec import to_extended_json
from .options import Options
from .state import STATE, insert_issues, read_checkpoint, write_checkpoint


def dangling_issue(table: str, key: str | None, rid: str, col: Column, parent: str, ref: str,
                   document: str | None = None) -> Issue:
    """What the log says of a reference to a row that does not exist, by the column's policy: the record
    rejected, its reference set to NULL, or kept (the bulk's settle step, remigrate and the online
    catch-up say it alike)."""
    if col.on_dangling == "reject":
        return Issue(REJECT, table, key, rid, "dangling_reference", col.source,
                     f"required reference {col.source} -> {parent} {ref} does not exist", document)
    if col.on_dangling == "null":
        return Issue(FIXUP, table, key, rid, "dangling_reference", col.source,
                     f"reference {col.source} -> {parent} {ref} does not exist: set to NULL (policy on_dangling: null)")
    return Issue(FIXUP, table, None, rid, "dangling_reference_kept", col.source,
                 f"reference {col.source} -> {parent} {ref} does not exist: kept "
                 "(policy on_dangling: keep; the foreign key is created NOT VALID)")


def settle_references(opts: Options, conn, mapping: Mapping, source, events) -> None:
    """Apply each reference's on_dangling policy. Rejects go first, parents first, so that they cascade
    (a rejected parent's children dangle in turn); the other policies then run side by side, a table
    per connection (two UPDATEs of one table at once could lock its rows in opposite orders). Each table
    is first asked, in one scan, which of its references dangle at all: only those are settled."""
    others: dict[str, list] = {}
    for t in mapping.tables.values():
        rejects = [col for col in t.columns if col.references and col.on_dangling == "reject"]
        # Asked again after each settled column: the rows it deleted may have been another's only dangling.
        while dangling := _dangling_columns(conn, mapping, t, rejects):
            _report_issues(events, t.name, _settle_column(conn, mapping, source, t, dangling[0]))
            rejects.remove(dangling[0])
        cols = [col for col in t.columns if col.references and col.on_dangling != "reject"]
        if cols:
            others[t.name] = cols

    def job(t: Table, cols: list):
        return lambda c: (t.name, [i for col in _dangling_columns(c, mapping, t, cols)
                                   for i in _settle_column(c, mapping, None, t, col)])

    jobs = [job(mapping.tables[name], cols) for name, cols in others.items()]
    for table, issues in run_on_connections(opts.connect_bulk, jobs, opts.worker_count()):
        _report_issues(events, table, issues)


def _dangling_columns(conn, mapping: Mapping, t: Table, cols: list) -> list:
    """The reference columns of `cols` holding a value that matches no parent row: one scan of the table
    with a join per column (on the parent's key, so no row repeats), instead of a scan per column."""
    if not cols:
        return []
    joins, counts = [], []
    for i, col in enumerate(cols):
        parent = mapping.tables[col.references]
        alias, pk, cid = sql.Identifier(f"p{i}"), sql.Identifier(parent.pk.name), sql.Identifier(col.name)
        joins.append(sql.SQL("LEFT JOIN {p} {a} ON {a}.{pk} = c.{c}").format(
            p=sql.Identifier(parent.name), a=alias, pk=pk, c=cid))
        counts.append(sql.SQL("count(*) FILTER (WHERE c.{c} IS NOT NULL AND {a}.{pk} IS NULL)").format(
            c=cid, a=alias, pk=pk))
    with conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT {} FROM {} c {}").format(
            sql.SQL(", ").join(counts), sql.Identifier(t.name), sql.SQL(" ").join(joins)))
        found = cur.fetchone()
    conn.rollback()
    return [col for col, n in zip(cols, found, strict=True) if n]


def _report_issues(events, table: str, issues: list[Issue]) -> None:
    if issues:
        events.put({"event": "issues", "table": table, "issues": issues})


def _settle_column(conn, mapping: Mapping, source, t: Table, col) -> list[Issue]:
    """One reference column's dangling values, per its policy, committed with its checkpoint."""
    step = f"refs:{t.name}.{col.name}"
    with conn.cursor() as cur:
        cp = read_checkpoint(cur, step)
        if cp.done:
            conn.rollback()
            return []
        parent = mapping.tables[col.references]
        tid, cid, pid = sql.Identifier(t.name), sql.Identifier(col.name), sql.Identifier(parent.name)
        dangling = sql.SQL("c.{col} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {p} p WHERE p.{ppk} = c.{col})").format(
            col=cid, p=pid, ppk=sql.Identifier(parent.pk.name))
        issues: list[Issue] = []
        if col.on_dangling == "reject":
            cur.execute(sql.SQL("DELETE FROM {t} c WHERE {cond} RETURNING c.id::text, c.{col}::text").format(
                t=tid, cond=dangling, col=cid))
            rows = cur.fetchall()
            originals = source.fetch(t.collection, {str(document_id(u, t.text_id)) for u, _ in rows}) if rows else {}
            for u, ref in rows:
                oid = str(document_id(u, t.text_id))
                issues.append(dangling_issue(t.name, oid, u, col, parent.name, ref, to_extended_json(originals.get(oid))))
            tcp = read_checkpoint(cur, f"table:{t.name}")
            tcp.loaded -= len(rows)
            tcp.rejected += len(rows)
            write_checkpoint(cur, tcp)
        elif col.on_dangling == "null":
            cur.execute(sql.SQL("""UPDATE {t} c SET {col} = NULL FROM
                                   (SELECT c.id, c.{col} AS old FROM {t} c WHERE {cond}) d
                                   WHERE c.id = d.id RETURNING c.id::text, d.old::text""").format(
                t=tid, col=cid, cond=dangling))
            for u, ref in cur.fetchall():
                issues.append(dangling_issue(t.name, str(document_id(u, t.text_id)), u, col, parent.name, ref))
        else:
            cur.execute(sql.SQL("SELECT c.id::text, c.{col}::text FROM {t} c WHERE {cond}").format(
                t=tid, col=cid, cond=dangling))
            for u, ref in cur.fetchall():
                issues.append(dangling_issue(t.name, None, u, col, parent.name, ref))
        insert_issues(cur, issues)
        cp.done, cp.fixups = True, sum(1 for i in issues if i.severity == "fixup")
        cp.rejected = sum(1 for i in issues if i.severity == "reject")
        write_checkpoint(cur, cp)
    conn.commit()
    return issues


def build_junctions(opts: Options, conn, mapping: Mapping, events) -> dict[str, dict[str, int]]:
    """Every junction from its own partition of the link stage, side by side; the stage is emptied last."""
    jobs = [lambda c, j=j: _build_junction(c, mapping, j) for j in mapping.junctions.values()]
    out: dict[str, dict[str, int]] = {}
    for name, stats, issues in run_on_connections(opts.connect_bulk, jobs, opts.worker_count()):
        out[name] = stats
        _report_issues(events, name, issues)
    with conn.cursor() as cur:
        # Every junction's checkpoint is done: the staged links are no longer needed (a rerun skips them).
        cur.execute(sql.SQL("TRUNCATE {}.link_stage").format(STATE))
    conn.commit()
    return {name: out[name] for name in mapping.junctions}


def _build_junction(conn, mapping: Mapping, j) -> tuple[str, dict[str, int], list[Issue]]:
    step = f"junction:{j.name}"
    issues: list[Issue] = []
    with conn.cursor() as cur:
        cp = read_checkpoint(cur, step)
        if not cp.done:
            lt, rt = mapping.tables[j.left.references], mapping.tables[j.right.references]
            cur.execute(sql.SQL("SELECT count(*) FROM {}.link_stage WHERE junction = %s").format(STATE), (j.name,))
            staged = cur.fetchone()[0]
            # The table is empty here (its rows commit with its checkpoint). A primary key built once after
            # the insert costs a fraction of one maintained row by row; DISTINCT keeps it unique, and a
            # duplicate would fail the ADD loudly. The same transaction, so a kill leaves the key as it was.
            jid, pkey = sql.Identifier(j.name), sql.Identifier(j.pkey)
            cols = sql.SQL(", ").join([sql.Identifier(j.left.column), sql.Identifier(j.right.column)])
            cur.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}").format(jid, pkey))
            cur.execute(sql.SQL("INSERT INTO {j} ({cols}) SELECT DISTINCT s.left_id, s.right_id FROM {st}.link_stage s "
                                "WHERE s.junction = %s").format(j=jid, cols=cols, st=STATE), (j.name,))
            inserted = cur.rowcount
            # Then the links to a record the target lacks go, each end by one anti-join over the deduplicated
            # rows (half the staged links, usually none to delete): cheaper than filtering every staged link
            # by both ends before the DISTINCT. Only when some went are the staged links read again, for
            # which array named them.
            dropped = 0
            for end, parent in ((j.left, lt), (j.right, rt)):
                cur.execute(sql.SQL("DELETE FROM {j} x WHERE NOT EXISTS (SELECT 1 FROM {p} p WHERE p.{ppk} = x.{c})").format(
                    j=jid, p=sql.Identifier(parent.name), ppk=sql.Identifier(parent.pk.name),
                    c=sql.Identifier(end.column)))
                dropped += cur.rowcount
            if dropped:
                issues = _dangling_link_issues(cur, j, lt, rt)
                insert_issues(cur, issues)
            cur.execute(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} PRIMARY KEY ({})").format(jid, pkey, cols))
            cp.loaded, cp.fixups, cp.position, cp.done = inserted - dropped, len(issues), staged, True
            write_checkpoint(cur, cp)
        cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(j.name)))
        stats = {"rows": cur.fetchone()[0], "links_staged": cp.position, "dangling_links": cp.fixups}
    conn.commit()
    return j.name, stats, issues


def _dangling_link_issues(cur, j, lt: Table, rt: Table) -> list[Issue]:
    """A fix-up for every staged link whose end the target lacks, naming the array that held it."""
    exists_l = sql.SQL("EXISTS (SELECT 1 FROM {} x WHERE x.{} = s.left_id)").format(
        sql.Identifier(lt.name), sql.Identifier(lt.pk.name))
    exists_r = sql.SQL("EXISTS (SELECT 1 FROM {} x WHERE x.{} = s.right_id)").format(
        sql.Identifier(rt.name), sql.Identifier(rt.pk.name))
    # Two anti-joins (hash joins), not one OR of subplans (an index probe per staged link).
    cur.execute(sql.SQL("""SELECT s.left_id::text, s.right_id::text, s.source_collection, s.source_field, false
                           FROM {st}.link_stage s WHERE s.junction = %s AND NOT {el}
                           UNION
                           SELECT s.left_id::text, s.right_id::text, s.source_collection, s.source_field, true
                           FROM {st}.link_stage s WHERE s.junction = %s AND {el} AND NOT {er}""").format(
        st=STATE, el=exists_l, er=exists_r), (j.name, j.name))
    issues = []
    for left, right, coll, fld, l_ok in cur.fetchall():
        owner_is_left = lt.collection == coll and any(s.field == fld and s.holds == "right" for s in j.sources)
        owner = left if owner_is_left else right
        missing = (rt.name, right) if l_ok else (lt.name, left)
        issues.append(Issue(FIXUP, j.name, str(objectid_from_uuid(owner)), owner, "junction_dangling",
                            f"{coll}.{fld}", f"link to {missing[0]} {missing[1]} dropped: that record "
                            "does not exist in the target (absent or rejected)"))
    return issues

