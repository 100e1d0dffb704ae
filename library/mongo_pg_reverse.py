#!/usr/bin/python
"""Ansible module: the lossless rollback's steps with mongo2pg: change capture, reverse-sync, reverse validation."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: mongo_pg_reverse
short_description: Capture writes made after go-live and apply them back to MongoDB
description:
  - O(action=capture) installs change capture (a trigger per migrated table and junction recording into
    mongo2pg.changes); idempotent. Run it at go-live, before traffic reopens, as the migration role.
  - O(action=sync) applies every captured change to MongoDB (documents rebuilt from their rows, field by
    field; link arrays from the junctions) until none waits; crash-safe, rerunnable.
  - O(action=validate) compares every changed document with its row and each collection's count with its
    table's; fails the task on FAIL; writes O(report).
options:
  action: {description: capture, sync or validate., type: str, choices: [capture, sync, validate], required: true}
  pg_uri: {description: PostgreSQL URI (never logged)., type: str, required: true}
  mongo_uri: {description: MongoDB URI (never logged); for sync and validate., type: str}
  db: {description: MongoDB database., type: str, default: nextcrm}
  mapping: {description: Built-in mapping name or YAML path., type: str, default: nextcrm}
  readers: {description: Roles that may count the waiting changes (monitoring)., type: list, elements: str, default: [pg_monitor]}
  batch: {description: Changes per batch (sync)., type: int, default: 1000}
  report: {description: JSON report of the reverse validation (0600)., type: path}
author: mongo2pg maintainers
"""

EXAMPLES = r"""
- name: Change capture from go-live
  mongo_pg_reverse:
    action: capture
    pg_uri: "{{ migration_pg_uri }}"

- name: Writes since go-live back to MongoDB
  mongo_pg_reverse:
    action: sync
    pg_uri: "{{ migration_pg_uri }}"
    mongo_uri: "{{ mongo_uri }}"
"""

RETURN = r"""
tables: {description: Tables and junctions captured., returned: action=capture, type: int}
totals: {description: "Changes, batches, documents created/updated/deleted, link arrays.", returned: action=sync, type: dict}
result: {description: The reverse validation (status, reasons, counts, differences)., returned: action=validate, type: dict}
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible.module_utils.mongo2pg_common import import_engine  # noqa: E402

ARGUMENT_SPEC = {
    "action": {"type": "str", "choices": ["capture", "sync", "validate"], "required": True},
    "pg_uri": {"type": "str", "required": True, "no_log": True},
    "mongo_uri": {"type": "str", "no_log": True},
    "db": {"type": "str", "default": "nextcrm"},
    "mapping": {"type": "str", "default": "nextcrm"},
    "readers": {"type": "list", "elements": "str", "default": ["pg_monitor"]},
    "batch": {"type": "int", "default": 1000},
    "report": {"type": "path"},
}


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True,
                           required_if=[("action", "sync", ("mongo_uri",)), ("action", "validate", ("mongo_uri",))])
    capture, connect, mapping, errors, redact = import_engine(module, "reverse.capture", "connect", "mapping", "errors",
                                                              "redact")
    sync, check = import_engine(module, "reverse.sync", "reverse.check")
    p = module.params
    try:
        if p["action"] == "capture":
            if module.check_mode:
                module.exit_json(changed=True, tables=0)
            conn = connect.pg_connect(p["pg_uri"], "mongo2pg-capture")
            try:
                tables, created = capture.install(conn, mapping.load_mapping(p["mapping"]), tuple(p["readers"]))
            finally:
                conn.close()
            module.exit_json(changed=created > 0, tables=tables)
        if p["action"] == "sync":
            if module.check_mode:
                module.exit_json(changed=False, msg="check mode: nothing applied")
            totals = sync.reverse_sync(p["pg_uri"], p["mongo_uri"], p["db"], p["mapping"], p["batch"])
            module.exit_json(changed=totals["changes"] > 0, totals=totals)
        result = check.reverse_validate(p["pg_uri"], p["mongo_uri"], p["db"], p["mapping"], p["report"])
    except errors.Mongo2PgError as exc:
        module.fail_json(msg=redact.redact_text(str(exc)))
        return
    if result["status"] != "PASS":
        module.fail_json(msg=f"reverse validation FAILED: {'; '.join(result['reasons'])}", result=result)
    module.exit_json(changed=False, result=result)


if __name__ == "__main__":
    main()
