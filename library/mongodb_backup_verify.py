#!/usr/bin/python
"""Ansible module: checksums and per-collection counts of a mongodump-format backup."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: mongodb_backup_verify
short_description: Checksum a MongoDB backup, count its collections, compare with a live database
description:
  - Counts the documents of every collection in a mongodump-format folder (plain or gzip) and checks
    the number of collections against O(min_collections).
  - Writes C(backup-checksums.txt) (sha256 of every file, sha256sum format) or verifies it, naming
    every file that is missing, changed or unlisted.
  - Compares the backup's counts with a live database (O(compare_uri), O(compare_db)): the source for
    the baseline, or the scratch database a restore test filled; O(drop_compare_db) drops that scratch
    database afterwards (never the backup's own database name).
options:
  path: {description: Backup folder (holding <db>/ and the checksum list)., type: path, required: true}
  db: {description: Database folder inside the backup., type: str, default: nextcrm}
  checksums: {description: Write the checksum list, verify it, or leave it alone., type: str, choices: [write, verify, none], default: none}
  min_collections: {description: Fewest collections the backup must hold (0 = no check)., type: int, default: 0}
  collections_policy: {description: What a shortfall of collections does., type: str, choices: [fail, warn], default: fail}
  compare_uri: {description: MongoDB URI of the database to compare counts with (never logged)., type: str}
  compare_db: {description: Name of that database., type: str}
  compare_policy: {description: What a count difference does., type: str, choices: [fail, warn], default: fail}
  drop_compare_db: {description: Drop O(compare_db) after comparing (a restore test's scratch database)., type: bool, default: false}
author: mongo2pg maintainers
"""

EXAMPLES = r"""
- name: Checksums of the new backup
  mongodb_backup_verify:
    path: "{{ backup_dir }}"
    checksums: write
    min_collections: 26

- name: Restore test counts, then drop the scratch database
  mongodb_backup_verify:
    path: "{{ backup_dir }}"
    compare_uri: "{{ mongo_uri }}"
    compare_db: nextcrm_restore_test
    drop_compare_db: true
"""

RETURN = r"""
collections: {description: Documents per collection in the backup., returned: always, type: dict}
collection_count: {description: Number of collections., returned: always, type: int}
total_documents: {description: Sum of the counts., returned: always, type: int}
size_bytes: {description: Size of the backup folder., returned: always, type: int}
checksums_file: {description: Path of backup-checksums.txt when written or verified., returned: when checksums != none, type: str}
checksum_problems: {description: Files missing, changed or unlisted., returned: when checksums == verify, type: list}
compared_counts: {description: Counts of the compared database., returned: when compare_db is set, type: dict}
count_differences: {description: "Per collection: backup and live counts where they differ.", returned: when compare_db is set, type: dict}
warnings_list: {description: Shortfalls and differences let through by a warn policy., returned: always, type: list}
"""

import os  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible.module_utils.mongo2pg_common import import_engine  # noqa: E402


def _differences(backup: dict, live: dict) -> dict:
    return {name: {"backup": backup.get(name), "live": live.get(name)}
            for name in sorted(set(backup) | set(live)) if backup.get(name) != live.get(name)}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "db": {"type": "str", "default": "nextcrm"},
            "checksums": {"type": "str", "choices": ["write", "verify", "none"], "default": "none"},
            "min_collections": {"type": "int", "default": 0},
            "collections_policy": {"type": "str", "choices": ["fail", "warn"], "default": "fail"},
            "compare_uri": {"type": "str", "no_log": True},
            "compare_db": {"type": "str"},
            "compare_policy": {"type": "str", "choices": ["fail", "warn"], "default": "fail"},
            "drop_compare_db": {"type": "bool", "default": False},
        },
        required_together=[("compare_uri", "compare_db")],
        supports_check_mode=True,
    )
    backup, errors, redact = import_engine(module, "ops.backup", "errors", "redact")
    p = module.params
    result = {"changed": False, "warnings_list": []}
    failures = []
    try:
        # Checksums first: a corrupted file is then reported by name, before counting trips over it.
        if p["checksums"] == "write":
            if module.check_mode:
                result["checksums_file"] = os.path.join(p["path"], backup.CHECKSUMS_FILE)
            else:
                path, files, changed = backup.write_checksums(p["path"])
                result.update(checksums_file=str(path), checksum_files=files, changed=changed)
        elif p["checksums"] == "verify":
            problems = backup.verify_checksums(p["path"])
            result.update(checksums_file=os.path.join(p["path"], backup.CHECKSUMS_FILE), checksum_problems=problems)
            if problems:
                module.fail_json(msg=f"checksum verification failed for {len(problems)} file(s): "
                                     f"{'; '.join(problems[:5])}", **result)
                return

        try:
            counts = backup.dump_counts(p["path"], p["db"])
        except (OSError, EOFError, ValueError) as exc:
            module.fail_json(msg=f"the backup in {p['path']} cannot be read: {exc}", **result)
            return
        result.update(collections=counts, collection_count=len(counts), total_documents=sum(counts.values()),
                      size_bytes=backup.tree_size(p["path"]))
        if p["min_collections"] and len(counts) < p["min_collections"]:
            msg = f"the backup holds {len(counts)} collections, fewer than the {p['min_collections']} expected"
            (failures if p["collections_policy"] == "fail" else result["warnings_list"]).append(msg)

        if p["compare_db"]:
            if p["drop_compare_db"] and p["compare_db"] == p["db"]:
                module.fail_json(msg=f"refusing to drop {p['compare_db']!r}: it is the backed-up database's own name")
                return
            live = backup.collection_counts(p["compare_uri"], p["compare_db"])
            diff = _differences(counts, live)
            result.update(compared_counts=live, count_differences=diff)
            if diff:
                msg = f"counts differ between the backup and {p['compare_db']!r}: {diff}"
                (failures if p["compare_policy"] == "fail" else result["warnings_list"]).append(msg)
            if p["drop_compare_db"] and not module.check_mode:
                backup.drop_database(p["compare_uri"], p["compare_db"])
                result["changed"] = True
    except errors.Mongo2PgError as exc:
        module.fail_json(msg=redact.redact_text(str(exc)), **result)
        return
    for w in result["warnings_list"]:
        module.warn(w)
    if failures:
        module.fail_json(msg="; ".join(failures), **result)
        return
    module.exit_json(**result)


if __name__ == "__main__":
    main()
