"""`migrate`, `plan`, `status`: the migration's commands."""

from __future__ import annotations

import json

from .. import console
from .common import need


def cmd_migrate(args) -> int:
    from ..files import write_private
    from ..migration import Options, run

    need(args, "pg-uri")
    opts = Options.from_values(vars(args))
    summary = run(opts, render=None if args.quiet else console.ConsoleProgress())
    console.print_summary(summary)
    if args.summary_file:
        write_private(args.summary_file, json.dumps(summary.to_json(), indent=1))
    return 0 if summary.status == "complete" else 1


def cmd_plan(args) -> int:
    from ..migration import Options, plan

    print(json.dumps(plan(Options(pg_uri="", mongo_uri=args.mongo_uri, dump=args.dump, db=args.db,
                                  mapping=args.mapping)), indent=1))
    return 0


def cmd_status(args) -> int:
    from ..migration import status

    need(args, "pg-uri")
    out = status(args.pg_uri)
    if out["state"] != "none":
        from ..online.capture import status as online_status

        online = online_status(args.pg_uri)  # an online migration's catch-up: its backlog and lag
        if online["capturing"]:
            out["online"] = {k: online[k] for k in ("documents_waiting", "seconds_behind", "last_event_at",
                                                    "seconds_since_last_event")}
    print(json.dumps(out, indent=1, default=str))
    return 0
