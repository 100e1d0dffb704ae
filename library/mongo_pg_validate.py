#!/usr/bin/python
"""Ansible module: validate a migration with mongo2pg, every row, and gate on the result."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: mongo_pg_validate
short_description: Validate a MongoDB -> PostgreSQL migration record by record and gate on it
description:
  - Runs the five layers of mongo2pg validation (row counts with rejects accounted by id,
    field-level match of every mapped field, referential integrity and junction completeness,
    type conversion, schema) and writes migration-validation-report.json plus a Markdown summary.
  - Fails the task when the gate is not met, naming the report and the failing layers, so the
    play stops before deployment.
  - Read-only on both databases; check mode runs it too (it changes nothing).
options:
  # BEGIN generated options: scripts/gen_knobs.py from mongo2pg.validation.ValidateOptions; edit the fields there
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
  report:
    description: Path of the JSON report (the .md summary goes beside it).
    type: path
    default: migration-validation-report.json
  sample:
    description: 'Check a seeded random sample of N rows per table (0: every row).'
    type: int
    default: 0
  seed:
    description: Seed of the sample's random choice.
    type: int
    default: 1
  min_match:
    description: Minimum field match percentage.
    type: float
    default: 99.0
  strict:
    description: Zero unexplained mismatches required.
    type: bool
    default: true
  reference_schema:
    description: 'Schema JSON the target must equal (default: from the mapping).'
    type: path
  baseline:
    description: 'Online migration, before the window: also write this pass''s baseline here (the capture''s position,
      what differed, the junctions'' links; mode 0600).'
    type: path
  since:
    description: 'Online cutover: check again only what changed after the baseline''s pass, with every count reconciled
      (a missing or stale baseline: every record).'
    type: path
  # END generated options
author: mongo2pg maintainers
"""

EXAMPLES = r"""
- name: Validation gate
  mongo_pg_validate:
    mongo_uri: "{{ mongo_uri }}"
    pg_uri: "{{ pg_uri }}"
    report: /var/lib/mongo2pg/migration-validation-report.json
    error_log: /var/lib/mongo2pg/migration-errors.log
"""

RETURN = r"""
overall_status: {description: PASS or FAIL., returned: always, type: str}
failed_layers: {description: Names of the layers that failed., returned: always, type: list}
summary: {description: The report's summary block (records, fields, matchPercentage)., returned: always, type: dict}
report: {description: Path of the JSON report., returned: always, type: str}
seconds: {description: Validation time., returned: always, type: float}
mode: {description: 'What was checked: every row, a sample, or the changes since a baseline.', returned: always, type: str}
rows_per_second: {description: Rows checked per second., returned: always, type: int}
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible.module_utils.mongo2pg_common import SOURCE_CONSTRAINTS, import_engine  # noqa: E402

# BEGIN generated ARGUMENT_SPEC: scripts/gen_knobs.py from mongo2pg.validation.ValidateOptions; edit the fields there
ARGUMENT_SPEC = {
    "pg_uri": {"type": "str", "required": True, "no_log": True},
    "mongo_uri": {"type": "str", "no_log": True},
    "dump": {"type": "path"},
    "db": {"type": "str", "default": "nextcrm"},
    "mapping": {"type": "str", "default": "nextcrm"},
    "error_log": {"type": "path", "default": "migration-errors.log"},
    "workers": {"type": "int", "default": 0},
    "retry_seconds": {"type": "float", "default": 300.0},
    "report": {"type": "path", "default": "migration-validation-report.json"},
    "sample": {"type": "int", "default": 0},
    "seed": {"type": "int", "default": 1},
    "min_match": {"type": "float", "default": 99.0},
    "strict": {"type": "bool", "default": True},
    "reference_schema": {"type": "path"},
    "baseline": {"type": "path"},
    "since": {"type": "path"},
}
# END generated ARGUMENT_SPEC


def main() -> None:
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        **SOURCE_CONSTRAINTS,
        supports_check_mode=True,
    )
    errors, redact, validation = import_engine(module, "errors", "redact", "validation")
    p = module.params
    try:
        report = validation.validate(validation.ValidateOptions.from_values(p))
    except errors.Mongo2PgError as exc:
        module.fail_json(msg=redact.redact_text(str(exc)), exit_code=exc.exit_code)
        return
    result = {"changed": False, "overall_status": report["overallStatus"], "failed_layers": report["failedLayers"],
              "summary": report["summary"], "report": p["report"], "seconds": report["seconds"], "mode": report["mode"],
              "rows_per_second": report["rowsPerSecond"]}
    if report["overallStatus"] != "PASS":
        module.fail_json(msg=f"validation FAILED ({', '.join(report['failedLayers'])}); see {p['report']} "
                             f"and its .md summary. Do not deploy.", **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
