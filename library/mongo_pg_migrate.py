#!/usr/bin/python
"""Ansible module: run the mongo2pg migration (thin adapter over the engine)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: mongo_pg_migrate
short_description: Migrate a MongoDB database (live or mongodump folder) into PostgreSQL with mongo2pg
description:
  - Loads every collection of the mapping into PostgreSQL with batched COPY; each batch and its
    checkpoint commit in one transaction, so a rerun after any interruption resumes exactly.
  - Builds junction tables from the id arrays of both sides, settles dangling references per the
    mapping's policy, creates indexes and foreign keys, and reconciles source = loaded + rejected.
  - In check mode nothing is written; the module returns the plan (tables in load order, source counts).
  - Run it with C(async) and poll; O(progress_file) is rewritten atomically after each batch.
options:
  # BEGIN generated options: scripts/gen_knobs.py from mongo2pg.migration.Options; edit the fields there
  pg_uri:
    description: PostgreSQL URI of the target database; sslmode=verify-full&sslrootcert=... for TLS. Contains a password,
      so never logged.
    type: str
    required: true
  mongo_uri:
    description: Live MongoDB URI (one of this and dump); tls=true&tlsCAFile=... for TLS. Contains a password, so
      never logged.
    type: str
  dump:
    description: Folder `mongodump --out` wrote (holding <db>/), or the <db> folder itself.
    type: path
  db:
    description: Database name in MongoDB or inside the dump.
    type: str
    default: nextcrm
  mapping:
    description: Built-in mapping name or a YAML file.
    type: str
    default: nextcrm
  error_log:
    description: The JSON-lines log of rejected records and fix-ups (the migration writes it, mode 0600; validation
      accounts for the rejects with it).
    type: path
    default: migration-errors.log
  workers:
    description: Parallel worker processes; 0 sizes it to the machine (one per CPU, at most 4).
    type: int
    default: 0
  retry_seconds:
    description: Keep retrying a lost connection to either side this long before failing.
    type: float
    default: 300.0
  batch_size:
    description: Documents per COPY transaction, at most.
    type: int
    default: 5000
  batch_bytes:
    description: BSON bytes per COPY transaction, at most (a batch holds one document at least), so that memory follows
      this bound rather than the documents' size.
    type: int
    default: 16777216
  split_documents:
    description: With a dump, a collection of at least 2N documents loads as ranges of at least N, one per worker,
      side by side; the split is stored with the run, so a resume uses the same ranges; 0 never splits.
    type: int
    default: 100000
  checkpoint_file:
    description: Human-readable mirror of the checkpoint; deleted on success, archived on fresh.
    type: path
    default: migration-checkpoint.json
  progress_file:
    description: Machine-readable progress JSON, rewritten atomically each batch.
    type: path
  progress_sheet:
    description: The runbook's progress sheet as CSV (time, phase, table, records, % complete, speed, errors), appended
      while it runs.
    type: path
  progress_sheet_seconds:
    description: Seconds between a loading table's rows in the progress sheet.
    type: float
    default: 10.0
  fresh:
    description: 'Start over: empty the target tables and the checkpoint instead of resuming.'
    type: bool
    default: false
  online:
    description: 'The bulk of an online migration: the source keeps changing while it is read (its changes captured
      by `mongo2pg online capture`, opened first), so counts are reconciled at cutover, after the catch-up, not at
      the end of this read.'
    type: bool
    default: false
  warn_error_rate:
    description: A HIGH line, with the top reasons, when a table rejects more than this fraction of its records.
    type: float
    default: 0.01
  max_error_rate:
    description: Stop (checkpointed) when a table rejects more than this fraction.
    type: float
    default: 0.05
  min_free_disk:
    description: Stop (checkpointed) when the target's disk has less than this fraction free.
    type: float
    default: 0.1
  min_free_memory:
    description: Stop (checkpointed) when the migration host (or its memory cgroup) has less than this fraction available.
    type: float
    default: 0.1
  hang_seconds:
    description: 'No progress in the load this long: reported as hung, with what to check.'
    type: float
    default: 600.0
  on_hang:
    description: A hung load is stopped (checkpointed, resumable) or only reported.
    type: str
    default: stop
    choices:
    - stop
    - report
  # END generated options
requirements: [mongo2pg (this repository's engine), psycopg2, pymongo]
author: mongo2pg maintainers
"""

EXAMPLES = r"""
- name: Migrate the final backup into PostgreSQL, polling progress
  mongo_pg_migrate:
    dump: /backups/final/dump
    pg_uri: "{{ pg_uri }}"
    progress_file: /var/lib/mongo2pg/progress.json
  async: 7200
  poll: 0
  register: migration_job
"""

RETURN = r"""
status:
  description: C(complete) when every table reconciles, else C(unreconciled).
  returned: success
  type: str
totals:
  description: source, loaded, rejected, fixups, junction_rows, seconds, documents_per_second, reconciled.
  returned: success
  type: dict
tables:
  description: Per table source, loaded, rejected, fixups, seconds, records_per_second, reconciled.
  returned: success
  type: list
plan:
  description: In check mode, the tables in load order with their source counts.
  returned: check mode
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible.module_utils.mongo2pg_common import SOURCE_CONSTRAINTS, import_engine  # noqa: E402

# BEGIN generated ARGUMENT_SPEC: scripts/gen_knobs.py from mongo2pg.migration.Options; edit the fields there
ARGUMENT_SPEC = {
    "pg_uri": {"type": "str", "required": True, "no_log": True},
    "mongo_uri": {"type": "str", "no_log": True},
    "dump": {"type": "path"},
    "db": {"type": "str", "default": "nextcrm"},
    "mapping": {"type": "str", "default": "nextcrm"},
    "error_log": {"type": "path", "default": "migration-errors.log"},
    "workers": {"type": "int", "default": 0},
    "retry_seconds": {"type": "float", "default": 300.0},
    "batch_size": {"type": "int", "default": 5000},
    "batch_bytes": {"type": "int", "default": 16777216},
    "split_documents": {"type": "int", "default": 100000},
    "checkpoint_file": {"type": "path", "default": "migration-checkpoint.json"},
    "progress_file": {"type": "path"},
    "progress_sheet": {"type": "path"},
    "progress_sheet_seconds": {"type": "float", "default": 10.0},
    "fresh": {"type": "bool", "default": False},
    "online": {"type": "bool", "default": False},
    "warn_error_rate": {"type": "float", "default": 0.01},
    "max_error_rate": {"type": "float", "default": 0.05},
    "min_free_disk": {"type": "float", "default": 0.1},
    "min_free_memory": {"type": "float", "default": 0.1},
    "hang_seconds": {"type": "float", "default": 600.0},
    "on_hang": {"type": "str", "default": "stop", "choices": ["stop", "report"]},
}
# END generated ARGUMENT_SPEC


def main() -> None:
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        **SOURCE_CONSTRAINTS,
        supports_check_mode=True,
    )
    errors, migration, redact = import_engine(module, "errors", "migration", "redact")
    opts = migration.Options.from_values(module.params)
    try:
        if module.check_mode:
            module.exit_json(changed=False, plan=migration.plan(opts))
        summary = migration.run(opts).to_json()
    except errors.Mongo2PgError as exc:
        module.fail_json(msg=redact.redact_text(str(exc)), exit_code=exc.exit_code)
        return
    if summary["status"] != "complete":
        module.fail_json(msg="migration finished but does not reconcile (source != loaded + rejected)", **summary)
    module.exit_json(changed=not summary.get("already_complete", False), **summary)


if __name__ == "__main__":
    main()
