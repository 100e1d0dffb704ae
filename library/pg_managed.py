#!/usr/bin/python
"""Ansible module: a managed PostgreSQL checked and prepared over SQL with the provider's admin login."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pg_managed
short_description: Verify a managed PostgreSQL (no host access) against the runbook, over SQL only
description:
  - O(action=server) reads the version, the extensions offered, the runbook's settings as the server shows
    them, durability, the admin login's attributes and whether the server refuses a login without TLS.
    Fails (NO-GO) on a version below O(min_major), a required extension not offered, durability off (fsync,
    full_page_writes, synchronous_commit) or an admin login without CREATEROLE/CREATEDB. Every other
    difference from O(expected) is returned with the provider's hint (parameter group, flags, ...).
  - O(action=admin_membership) lets the admin login act as the roles it created (PostgreSQL 16+ gives it
    only ADMIN on them), so it can make one of them the database's owner.
  - O(action=database) checks the extensions are created in the database and pgvector works.
options:
  action: {description: What to do., type: str, choices: [server, admin_membership, database], default: server}
  pg_uri: {description: "PostgreSQL URI: the admin login (server, admin_membership), or a login to the application database (database). Never logged.", type: str, required: true}
  provider: {description: "The provider (rds, aurora, cloudsql, azure, neon, supabase, or any name): which hint to give.", type: str, default: ""}
  min_major: {description: Lowest major version accepted., type: int, default: 16}
  extensions: {description: Extensions the runbook needs., type: list, elements: str, default: []}
  expected: {description: "The runbook's settings to compare: {name: value}.", type: dict, default: {}}
  roles: {description: Roles the admin login must act as (admin_membership)., type: list, elements: str, default: []}
author: mongo2pg maintainers
"""

EXAMPLES = r"""
- name: The managed server against the runbook
  pg_managed:
    pg_uri: "{{ pg_admin_uri }}"
    provider: rds
    extensions: [vector, pg_stat_statements]
    expected: {max_connections: 200, random_page_cost: 1.1}
  no_log: true
"""

RETURN = r"""
server: {description: "What the server showed: version, admin, tls, durability, differences (name, have, want, hint).", returned: action=server, type: dict}
granted: {description: Roles the admin login was granted now., returned: action=admin_membership, type: list}
database: {description: Extensions created and the pgvector check., returned: action=database, type: dict}
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible.module_utils.mongo2pg_common import import_engine  # noqa: E402


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "action": {"type": "str", "choices": ["server", "admin_membership", "database"], "default": "server"},
            "pg_uri": {"type": "str", "required": True, "no_log": True},
            "provider": {"type": "str", "default": ""},
            "min_major": {"type": "int", "default": 16},
            "extensions": {"type": "list", "elements": "str", "default": []},
            "expected": {"type": "dict", "default": {}},
            "roles": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    managed, errors, redact = import_engine(module, "ops.managed", "errors", "redact")
    p = module.params
    try:
        if p["action"] == "server":
            server = managed.check_server(p["pg_uri"], provider=p["provider"], min_major=p["min_major"],
                                          extensions=p["extensions"], expected=p["expected"])
            if server["nogo"]:
                module.fail_json(msg="NO-GO: " + "; ".join(server["nogo"]), server=server)
            module.exit_json(changed=False, server=server)
        if p["action"] == "admin_membership":
            if module.check_mode:
                module.exit_json(changed=False, granted=[])
            granted = managed.grant_admin_membership(p["pg_uri"], p["roles"])
            module.exit_json(changed=bool(granted), granted=granted)
        database = managed.check_database(p["pg_uri"], p["extensions"])
        if not database["ok"]:
            module.fail_json(msg=f"extensions missing in the database: {database['missing']} "
                                 f"(pgvector check: {database['vector']})", database=database)
        module.exit_json(changed=False, database=database)
    except errors.Mongo2PgError as exc:
        module.fail_json(msg=redact.redact_text(str(exc)))


if __name__ == "__main__":
    main()
