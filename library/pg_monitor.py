#!/usr/bin/python
"""Ansible module: a post-migration monitoring snapshot against the runbook's thresholds, or a window summary."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pg_monitor
short_description: Monitoring snapshot of the application and PostgreSQL, judged against thresholds
description:
  - O(action=snapshot) reads the health endpoint (status, latency), the key endpoints (O(endpoints),
    against their targets), pg_stat_activity (active, longest, waiting), connections against
    max_connections, slow statements (pg_stat_statements), database and table sizes, index usage, the
    errors per minute in PostgreSQL's log, and the host's CPU, memory and the disk of PostgreSQL's data
    directory; compares them with the runbook's thresholds (6.5), appends the snapshot to O(history) and
    fails on a breach (O(breach_policy)).
  - O(action=summary) judges the snapshots in O(history) against the 48-hour success criteria.
  - Reads only. Run it on the database host (the monitoring role does, with the engine shipped there and
    on PYTHONPATH): the host figures, the data directory and the log are that host's.
options:
  action: {description: snapshot or summary., type: str, choices: [snapshot, summary], default: snapshot}
  pg_uri: {description: PostgreSQL URI of a monitoring login (never logged)., type: str}
  health_url: {description: The application's health endpoint., type: str}
  history: {description: JSON-lines history file (0600)., type: path, required: true}
  disk_path: {description: "File system whose usage counts (default: PostgreSQL's data directory, which must be on this host).", type: path}
  host_name: {description: "The measured host's inventory name, recorded in the snapshot.", type: str}
  app_url: {description: The application's base URL for O(endpoints)., type: str}
  endpoints: {description: "Key endpoints to time in order: {name, path, max_ms, capture} as the smoke tests.", type: list, elements: dict, default: []}
  pg_log: {description: "PostgreSQL's log file (default: the server's current one).", type: path}
  log_minutes: {description: Minutes of the log judged., type: float, default: 5}
  thresholds: {description: Overrides of the thresholds (health_ms, active_queries, ...)., type: dict, default: {}}
  breach_policy: {description: What a breach does., type: str, choices: [fail, warn], default: fail}
  managed: {description: "A provider's server with no host of ours: the figures SQL gives; CPU, memory, disk and
    the log are left to the provider's console (null in the snapshot).", type: bool, default: false}
  criteria: {description: "Overrides of the 48-hour success criteria a summary judges (uptime_percent, cpu_percent,
    memory_percent: averages over the window).", type: dict, default: {}}
author: mongo2pg maintainers
"""

EXAMPLES = r"""
- name: Monitoring snapshot
  pg_monitor:
    pg_uri: "{{ monitor_pg_uri }}"
    health_url: https://crm.example.com/api/health
    history: /var/lib/mongo2pg/monitoring-history.jsonl
"""

RETURN = r"""
snapshot: {description: The figures read., returned: action=snapshot, type: dict}
breaches: {description: The thresholds exceeded, one line each., returned: action=snapshot, type: list}
summary: {description: The window against the success criteria., returned: action=summary, type: dict}
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible.module_utils.mongo2pg_common import import_engine  # noqa: E402


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "action": {"type": "str", "choices": ["snapshot", "summary"], "default": "snapshot"},
            "pg_uri": {"type": "str", "no_log": True},
            "health_url": {"type": "str"},
            "history": {"type": "path", "required": True},
            "disk_path": {"type": "path"},
            "host_name": {"type": "str"},
            "app_url": {"type": "str"},
            "endpoints": {"type": "list", "elements": "dict", "default": []},
            "pg_log": {"type": "path"},
            "log_minutes": {"type": "float", "default": 5},
            "thresholds": {"type": "dict", "default": {}},
            "breach_policy": {"type": "str", "choices": ["fail", "warn"], "default": "fail"},
            "criteria": {"type": "dict", "default": {}},
            "managed": {"type": "bool", "default": False},
        },
        required_if=[("action", "snapshot", ("pg_uri",))],
        supports_check_mode=True,
    )
    monitor, errors, redact = import_engine(module, "ops.monitor", "errors", "redact")
    p = module.params
    if p["action"] == "summary":
        summary = monitor.summarize(monitor.read_history(p["history"]), p["criteria"])
        if not summary["success"]:
            module.fail_json(msg=f"success criteria not met: {'; '.join(summary['reasons'])}", summary=summary)
        module.exit_json(changed=False, summary=summary)
    try:
        thresholds = monitor.thresholds_from(p["thresholds"])
        snap = monitor.snapshot(p["pg_uri"], p["health_url"], p["disk_path"], host_name=p["host_name"],
                                app_url=p["app_url"], endpoints=p["endpoints"], pg_log=p["pg_log"],
                                log_minutes=p["log_minutes"], managed=p["managed"])
    except errors.Mongo2PgError as exc:
        module.fail_json(msg=redact.redact_text(str(exc)))
        return
    breaches = monitor.evaluate(snap, thresholds)
    if not module.check_mode:
        monitor.append_history(p["history"], snap, breaches)
    result = {"changed": not module.check_mode, "snapshot": snap, "breaches": breaches}
    if breaches and p["breach_policy"] == "fail":
        module.fail_json(msg=f"monitoring thresholds breached: {'; '.join(breaches)}", **result)
    for b in breaches:
        module.warn(f"monitoring threshold breached: {b}")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
