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
  pg_uri:
    description: PostgreSQL URI of the target database. Contains a password, so never logged.
    type: str
    required: true
  mongo_uri:
    description: Live MongoDB URI. Exactly one of O(mongo_uri) and O(dump) is required.
    type: str
  dump:
    description: Folder written by C(mongodump --out) (or its database folder).
    type: path
  db:
    description: Database name in MongoDB or inside the dump.
    type: str
    default: nextcrm
  mapping:
    description: Built-in mapping name or path to a mapping YAML file.
    type: str
    default: nextcrm
  batch_size:
    description: Documents per COPY transaction, at most.
    type: int
    default: 5000
  batch_bytes:
    description:
      - BSON bytes per COPY transaction, at most (a batch holds one document at least), so that memory
        follows this bound rather than the documents' size.
    type: int
    default: 16777216
  workers:
    description: Parallel table loaders; 0 sizes it to the machine.
    type: int
    default: 0
  split_documents:
    description:
      - With O(dump), a collection of at least twice this many documents loads as ranges, one per worker,
        side by side. The split is stored with the run, so a resume uses the same ranges. 0 never splits.
    type: int
    default: 100000
  error_log:
    description: JSON-lines log of rejected records and fix-ups (mode 0600).
    type: path
    default: migration-errors.log
  checkpoint_file:
    description: Human-readable mirror of the checkpoint; deleted on success, archived on O(fresh).
    type: path
    default: migration-checkpoint.json
  progress_file:
    description: Machine-readable progress JSON, rewritten each batch.
    type: path
  progress_sheet:
    description: "The runbook's progress sheet as CSV (time, phase, table, records, % complete, speed, errors), appended while it runs."
    type: path
  progress_sheet_seconds:
    description: Seconds between a loading table's rows in O(progress_sheet).
    type: float
    default: 10.0
  fresh:
    description: Start over (empty the target tables and the checkpoint) instead of resuming.
    type: bool
    default: false
  max_error_rate:
    description: Stop (checkpointed) when a table rejects more than this fraction of its records.
    type: float
    default: 0.05
  min_free_disk:
    description: Stop (checkpointed) when the target's data directory has less than this fraction free.
    type: float
    default: 0.1
  warn_error_rate:
    description: A HIGH line (in the progress file's warnings), with the top reasons, when a table rejects more.
    type: float
    default: 0.01
  min_free_memory:
    description: Stop (checkpointed) when the migration host (or its memory cgroup) has less available.
    type: float
    default: 0.1
  hang_seconds:
    description: No progress in the load for this long is reported as hung, with what to check.
    type: float
    default: 600.0
  on_hang:
    description: A hung load is stopped (checkpointed, resumable) or only reported.
    type: str
    choices: [stop, report]
    default: stop
  retry_seconds:
    description: Keep retrying a lost connection to either side this long before failing.
    type: float
    default: 300.0
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
from ansible.module_utils.mongo2pg_common import (  # noqa: E402
    CONNECTION_ARGS,
    SOURCE_CONSTRAINTS,
    import_engine,
)

# The module's options (DOCUMENTATION above describes each; tests/test_knobs.py holds both to the engine).
ARGUMENT_SPEC = {
        **CONNECTION_ARGS,
        "batch_size": {"type": "int", "default": 5000},
        "batch_bytes": {"type": "int", "default": 16 << 20},
        "workers": {"type": "int", "default": 0},
        "split_documents": {"type": "int", "default": 100_000},
        "error_log": {"type": "path", "default": "migration-errors.log"},
        "checkpoint_file": {"type": "path", "default": "migration-checkpoint.json"},
        "progress_file": {"type": "path"},
        "progress_sheet": {"type": "path"},
        "progress_sheet_seconds": {"type": "float", "default": 10.0},
        "fresh": {"type": "bool", "default": False},
        "max_error_rate": {"type": "float", "default": 0.05},
        "min_free_disk": {"type": "float", "default": 0.10},
    "warn_error_rate": {"type": "float", "default": 0.01},
    "min_free_memory": {"type": "float", "default": 0.10},
    "hang_seconds": {"type": "float", "default": 600.0},
    "on_hang": {"type": "str", "choices": ["stop", "report"], "default": "stop"},
        "retry_seconds": {"type": "float", "default": 300.0},
}


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
