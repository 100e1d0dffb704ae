"""`schema`, `mapping`, `app-check`, `id`: the target's schema, a mapping from an application's schema.prisma, ids."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import ConfigError
from .common import need, write_or_print


def cmd_schema(args) -> int:
    from .. import schema
    from ..connect import pg_connect
    from ..mapping import load_mapping

    mapping = load_mapping(args.mapping)
    if args.action == "show":
        print(json.dumps(schema.expected_schema(mapping), indent=1))
        return 0
    if args.action == "prisma":
        from ..prisma.to_prisma import schema_prisma

        write_or_print(args.out, schema_prisma(mapping), f"schema prisma: {len(mapping.tables)} models and "
                        f"{len(mapping.junctions)} junction models")
        return 0
    need(args, "pg-uri")
    conn = pg_connect(args.pg_uri)
    try:
        if args.action == "apply":
            from ..migration.state import create_state

            n = schema.apply(conn, mapping)
            create_state(conn, mapping)  # the migration's own schema, so that the same user owns both
            print(f"schema apply: {len(mapping.tables)} tables, {len(mapping.junctions)} junctions, "
                  f"{len(mapping.enums)} enums ensured ({n} statements, each IF NOT EXISTS)")
        elif args.action == "finalize":
            n = schema.finalize(conn, mapping, progress=lambda name: print(f"  created {name}", flush=True))
            print(f"schema finalize: {n} indexes/foreign keys created")
        else:
            expected = json.load(open(args.reference)) if args.reference else schema.expected_schema(mapping)
            diffs = schema.diff_schemas(expected, schema.describe(conn), stage=args.stage)
            for d in diffs:
                print(d)
            print("schema matches" if not diffs else f"{len(diffs)} differences")
            return 0 if not diffs else 1
    finally:
        conn.close()
    return 0


def cmd_mapping(args) -> int:
    from ..prisma.dmmf import read_dmmf
    from ..prisma.from_prisma import mapping_from_dmmf
    from ..prisma.presets import PRESETS
    from ..prisma.written import check_mapping, mapping_yaml

    path = Path(args.schema)
    name = args.name or (path.resolve().parent.name if path.stem == "schema" else path.stem)
    mapping = mapping_from_dmmf(read_dmmf(args.schema), PRESETS[args.naming], name=name.replace("-", "_"))
    text = mapping_yaml(mapping, f"{name}: mapping written by `mongo2pg mapping from-prisma {Path(args.schema).name} "
                        f"--naming {args.naming}`.\nReview it (policies: on_dangling, fill) before migrating.")
    parsed = check_mapping(mapping, text)  # what the engine will read: it must load
    write_or_print(args.out, text, f"mapping from-prisma: {len(parsed.tables)} tables, {len(parsed.junctions)} "
                    f"junctions, {len(parsed.foreign_keys())} foreign keys, {len(parsed.indexes())} indexes")
    return 0


def cmd_id(args) -> int:
    from ..ids import IdFormatError, convert_any

    try:
        kind, other = convert_any(args.value)
    except IdFormatError as exc:
        raise ConfigError(str(exc)) from None
    print(f"{'ObjectId' if kind == 'objectid' else 'UUID'} {args.value.strip()} -> "
          f"{'UUID' if kind == 'objectid' else 'ObjectId'} {other}")
    return 0


def cmd_app_check(args) -> int:
    from ..connect import pg_connect
    from ..prisma.app_check import check_app
    from ..prisma.dmmf import read_dmmf

    need(args, "pg-uri")
    dmmf = read_dmmf(args.schema)
    conn = pg_connect(args.pg_uri, "mongo2pg-app-check")
    try:
        conn.set_session(readonly=True)
        problems = check_app(conn, dmmf)
    finally:
        conn.close()
    for p in problems:
        print(f"app-check: {p.line()}")
    models = dmmf["datamodel"]["models"]
    fields = sum(1 for m in models for f in m["fields"] if f["kind"] != "object")
    if problems:
        print(f"app-check: {len(problems)} problem(s): the app's schema {args.schema} does not read every row")
        return 1
    print(f"app-check: every row fits {args.schema} ({len(models)} models, {fields} fields checked)")
    return 0
