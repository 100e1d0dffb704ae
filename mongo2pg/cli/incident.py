"""`record`, `remigrate`: the runbook's P1 "data inconsistency reported" procedure. `record` tells what
the migration did with one id; `remigrate` loads documents fixed in the source again."""

from __future__ import annotations

import json
from dataclasses import asdict

from ..errors import ConfigError
from .common import need


def cmd_record(args) -> int:
    from ..connect import pg_connect
    from ..files import write_private
    from ..mapping import load_mapping
    from ..ops.record import GOOD, look_up, render
    from ..source.readers import open_source

    need(args, "pg-uri")
    mapping = load_mapping(args.mapping)
    source = open_source(args.mongo_uri, args.dump, args.db)
    conn = pg_connect(args.pg_uri, "mongo2pg-record")
    try:
        found = look_up(conn, source, mapping, args.id, args.error_log)
    finally:
        conn.close()
    print(render(found, args.id), end="")
    if args.json:
        write_private(args.json, json.dumps([asdict(f) for f in found], indent=1, default=str) + "\n")
    if not found:
        return 2
    # REJECTED is an answer, not a fault: the log says why; the rest want a look.
    return 0 if all(f.verdict in (*GOOD, "REJECTED") for f in found) else 1


def cmd_remigrate(args) -> int:
    from ..connect import pg_connect
    from ..mapping import load_mapping
    from ..migration.remigrate import logged_rejects, remigrate
    from ..ops.record import candidates
    from ..pooler import refuse_transaction_pooler
    from ..source.readers import open_source

    need(args, "pg-uri")
    if bool(args.ids) == bool(args.rejects):
        raise ConfigError("give the ids to load again, or --rejects (every record the log rejected; --reason to "
                          "choose), not both")
    refuse_transaction_pooler(args.pg_uri)
    mapping = load_mapping(args.mapping)
    source = open_source(args.mongo_uri, args.dump, args.db)
    conn = pg_connect(args.pg_uri, "mongo2pg-remigrate")
    try:
        if args.rejects:
            wanted = []
            for table, key in logged_rejects(conn, args.reason):
                if table in mapping.tables:
                    t = mapping.tables[table]
                    wanted += [(t, i) for tt, i in candidates(mapping, key) if tt is t]
        else:
            wanted = [(t, i) for text in args.ids for t, i in candidates(mapping, text)]
            wanted = _present(source, wanted)
        out = remigrate(conn, source, mapping, wanted, args.error_log)
    finally:
        conn.close()
    for line in out.loaded:
        print(f"loaded: {line}")
    for issue in out.rejected:
        print(f"still rejected: {issue.table} {issue.source_id}: {issue.reason}"
              f"{' ' + issue.field if issue.field else ''}: {issue.message}")
    for line in out.not_in_source:
        print(f"not in the source: {line}")
    print(f"remigrate: {len(out.loaded)} loaded, {len(out.rejected)} still rejected, {len(out.not_in_source)} not "
          f"in the source; logged to {args.error_log} and mongo2pg.rejects")
    return 0 if not out.rejected and not out.not_in_source else 1


def _present(source, wanted):
    """An id given on the command line names a document in one collection: keep the tables it is in (all
    of them, when it is in none: each is then reported not in the source)."""
    here = [(t, i) for t, i in wanted if source.fetch(t.collection, {str(i)})]
    return here or wanted
