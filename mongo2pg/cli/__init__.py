"""`mongo2pg`: the engine's command line. `--help` on any command prints help and does nothing else.

- `parser.py`: the one parser (the migration's and validation's flags made from the engine's options)
- one module of handlers per wing: `migration.py`, `schema.py`, `validation.py`, `ops.py`, `reverse.py`,
  `fixtures.py`, `incident.py` (record, remigrate), `online.py` (change capture before the bulk); `common.py` for what they share. A handler parses nothing and holds no logic an Ansible
  module would need: it calls the engine and prints.

Exit codes: 0 success, 1 a data gate failed (unreconciled counts, validation FAIL, a guard stopped
the run, duplicates under `on_duplicate: fail`, an index or foreign key PostgreSQL refused) or an
unexpected error (one line; MONGO2PG_DEBUG=1 shows the traceback), 2 a configuration error (bad
option, mapping, URI, server).
"""

from __future__ import annotations

import os
import sys

from ..errors import Mongo2PgError
from ..redact import redact_text
from . import fixtures, incident, migration, online, ops, reverse, schema, validation
from .parser import build_parser

COMMANDS = {"migrate": migration.cmd_migrate, "plan": migration.cmd_plan, "status": migration.cmd_status,
            "schema": schema.cmd_schema, "mapping": schema.cmd_mapping, "app-check": schema.cmd_app_check,
            "id": schema.cmd_id, "record": incident.cmd_record, "remigrate": incident.cmd_remigrate,
            "sample-data": fixtures.cmd_sample_data, "validate": validation.cmd_validate,
            "dump": ops.cmd_dump, "restore": ops.cmd_restore, "monitor": ops.cmd_monitor,
            "estimate": ops.cmd_estimate, "report": ops.cmd_report, "window": ops.cmd_window, "capture": reverse.cmd_capture,
            "online": online.cmd_online, "reverse-sync": reverse.cmd_reverse_sync, "reverse-validate": reverse.cmd_reverse_validate}

__all__ = ["COMMANDS", "build_parser", "main"]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        return COMMANDS[args.command](args)
    except Mongo2PgError as exc:
        print(f"mongo2pg {args.command}: error: {redact_text(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        # A full disk, a read-only or missing folder for the log, checkpoint or report files.
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"mongo2pg {args.command}: error: {exc.strerror or exc}{where} -- free space or fix the path, then "
              "rerun (a migration resumes from its last committed batch)", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - an operator gets one line, never a traceback
        if os.environ.get("MONGO2PG_DEBUG"):
            raise
        first = (getattr(exc, "pgerror", None) or str(exc)).strip().splitlines()
        print(f"mongo2pg {args.command}: error: {type(exc).__name__}: {redact_text(first[0] if first else '')} -- "
              "committed work is checkpointed; rerun to resume once the cause is fixed (MONGO2PG_DEBUG=1 shows "
              "the traceback)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"mongo2pg {args.command}: interrupted; committed work is checkpointed, rerun to resume",
              file=sys.stderr)
        return 130
