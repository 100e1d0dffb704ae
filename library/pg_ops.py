#!/usr/bin/python
"""Ansible module: the runbook's quick-reference commands (Appendix B) against PostgreSQL, as readable tables."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pg_ops
short_description: The runbook's Appendix B commands - connections, slow queries, sizes, idle sessions, indexes, replicas, vacuum
description:
  - Runs one of the runbook's quick-reference commands and returns its rows and a plain-text table.
  - connections, slow-queries, db-size, table-sizes, idle-connections, index-usage and replication only
    read, and run in check mode too.
  - kill-idle terminates the sessions idle longer than O(idle_minutes) (not its own); vacuum-analyze runs
    VACUUM ANALYZE on the tables the login may vacuum. In check mode both only say what they would do.
  - Terminating another role's sessions needs membership of pg_signal_backend (or superuser).
options:
  pg_uri: {description: PostgreSQL URI of the login to use (never logged)., type: str, required: true}
  command:
    description: The command.
    type: str
    required: true
    choices: [connections, slow-queries, db-size, table-sizes, idle-connections, kill-idle, index-usage, replication, vacuum-analyze]
  idle_minutes: {description: Idle for longer than this (idle-connections, kill-idle)., type: float, default: 10}
  slow_ms: {description: Mean execution time above which a statement is slow., type: float, default: 100}
  limit: {description: Rows at most., type: int, default: 20}
author: mongo2pg maintainers
"""

EXAMPLES = r"""
- name: Connections by user, application and state
  pg_ops:
    pg_uri: "{{ ops_pg_uri }}"
    command: connections
"""

RETURN = r"""
columns: {description: Column names., returned: always, type: list}
rows: {description: The rows., returned: always, type: list}
table: {description: The rows as a plain-text table., returned: always, type: str}
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible.module_utils.mongo2pg_common import import_engine  # noqa: E402

ARGUMENT_SPEC = {
    "pg_uri": {"type": "str", "required": True, "no_log": True},
    "command": {"type": "str", "required": True,
                "choices": ["connections", "slow-queries", "db-size", "table-sizes", "idle-connections", "kill-idle",
                            "index-usage", "replication", "vacuum-analyze"]},
    "idle_minutes": {"type": "float", "default": 10},
    "slow_ms": {"type": "float", "default": 100},
    "limit": {"type": "int", "default": 20},
}

IDLE = ("FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle' AND pid <> pg_backend_pid() "
        "AND state_change < now() - make_interval(secs => %(idle_seconds)s)")
QUERIES = {
    "connections": "SELECT usename AS user, application_name AS application, coalesce(state, '-') AS state, "
                   "count(*) AS connections FROM pg_stat_activity WHERE datname = current_database() "
                   "GROUP BY 1, 2, 3 ORDER BY 4 DESC, 1 LIMIT %(limit)s",
    "slow-queries": "SELECT round(mean_exec_time::numeric, 1) AS mean_ms, calls, round(max_exec_time::numeric, 1) AS "
                    "max_ms, left(regexp_replace(query, '\\s+', ' ', 'g'), 100) AS query FROM pg_stat_statements "
                    "WHERE mean_exec_time > %(slow_ms)s ORDER BY mean_exec_time DESC LIMIT %(limit)s",
    "db-size": "SELECT current_database() AS database, pg_size_pretty(pg_database_size(current_database())) AS size",
    "table-sizes": "SELECT relname AS table, pg_size_pretty(pg_total_relation_size(relid)) AS total, "
                   "pg_size_pretty(pg_relation_size(relid)) AS data, n_live_tup AS rows FROM pg_stat_user_tables "
                   "WHERE schemaname = 'public' ORDER BY pg_total_relation_size(relid) DESC LIMIT %(limit)s",
    "idle-connections": "SELECT pid, usename AS user, application_name AS application, client_addr AS client, "
                        "date_trunc('second', now() - state_change) AS idle_for " + IDLE
                        + " ORDER BY state_change LIMIT %(limit)s",
    "index-usage": "SELECT relname AS table, indexrelname AS index, idx_scan AS scans, "
                   "pg_size_pretty(pg_relation_size(indexrelid)) AS size FROM pg_stat_user_indexes "
                   "WHERE schemaname = 'public' ORDER BY idx_scan DESC, 1, 2 LIMIT %(limit)s",
    "replication": "SELECT application_name AS replica, client_addr AS client, state, sync_state, "
                   "replay_lag FROM pg_stat_replication ORDER BY 1",
    "kill-idle": "SELECT pid, usename AS user, application_name AS application, pg_terminate_backend(pid) AS "
                 "terminated " + IDLE + " ORDER BY state_change",
}
EMPTY = {"replication": "no replicas are connected to this server",
         "idle-connections": "no session idle for longer than the given minutes",
         "kill-idle": "no session idle for longer than the given minutes",
         "slow-queries": "no statement over the given mean time"}


def text_table(columns: list[str], rows: list[list]) -> str:
    cells = [[("-" if v is None else str(v)) for v in r] for r in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]


    def line(values: list[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    return "\n".join([line(columns), line(["-" * w for w in widths])] + [line(r) for r in cells])


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    p = module.params
    cmd = p["command"]
    connect, errors = import_engine(module, "connect", "errors")
    import psycopg2

    try:
        conn = connect.pg_connect(p["pg_uri"], "mongo2pg-ops")
    except errors.Mongo2PgError as exc:
        module.fail_json(msg=str(exc))
    conn.autocommit = True
    args = {"limit": p["limit"], "slow_ms": p["slow_ms"], "idle_seconds": p["idle_minutes"] * 60}
    try:
        with conn.cursor() as cur:
            if cmd == "vacuum-analyze":
                if not module.check_mode:
                    cur.execute("VACUUM ANALYZE")
                module.exit_json(changed=not module.check_mode, columns=[], rows=[],
                                 table="VACUUM ANALYZE " + ("would run (check mode)" if module.check_mode else "done"))
            if cmd == "slow-queries":
                cur.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'")
                if not cur.fetchone():
                    module.fail_json(msg="pg_stat_statements is not installed in this database (CREATE EXTENSION "
                                         "pg_stat_statements; the postgresql role preloads it)")
            query = QUERIES["idle-connections"] if cmd == "kill-idle" and module.check_mode else QUERIES[cmd]
            cur.execute(query, args)
            columns = [d[0] for d in cur.description]
            rows = [list(r) for r in cur.fetchall()]
    except psycopg2.Error as exc:
        module.fail_json(msg=f"{cmd}: {str(exc).strip().splitlines()[0]}")
    finally:
        conn.close()
    rows = [[v if isinstance(v, int | float | str | bool) or v is None else str(v) for v in r] for r in rows]
    table = text_table(columns, rows) if rows else EMPTY.get(cmd, "no rows")
    if cmd == "kill-idle" and module.check_mode:
        table = f"would terminate {len(rows)} sessions (check mode)" + ("\n" + table if rows else "")
    module.exit_json(changed=cmd == "kill-idle" and bool(rows) and not module.check_mode, columns=columns, rows=rows,
                     table=table)


if __name__ == "__main__":
    main()
