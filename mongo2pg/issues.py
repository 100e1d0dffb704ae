"""The reject record, defined once: what a rejected or fixed-up record is, how the error log writes it,
and how validation reads it back.

An Issue travels from the transform (or a post-load step) into the run's state table
`mongo2pg.rejects` (as a COPY line) and from there into the JSON-lines error log, which validation
reads to account for every record that was not loaded as it was in the source.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .files import open_private

REJECT = "reject"  # the record was not loaded
FIXUP = "fixup"  # the record was loaded, something in it changed or was dropped
REMIGRATED = "remigrated"  # a fix-up's reason: the record was re-read from the source and loaded (remigrate)
REMOVED = "removed"  # a fix-up's reason: the document left the source after the bulk read (online catch-up)

# The columns of mongo2pg.rejects, in the order of Issue's fields.
REJECT_COLUMNS = ("severity", "tbl", "source_id", "uuid", "reason", "field", "message", "document")


@dataclass
class Issue:
    severity: str  # REJECT or FIXUP
    table: str
    source_id: str | None  # the _id as an operator searches for it: str(), not repr()
    uuid: str | None
    reason: str  # a reason code, e.g. missing_required, duplicate_key, dangling_reference
    field: str | None
    message: str
    document: str | None = None  # the original document as canonical Extended JSON (rejects)

    def to_record(self) -> dict[str, Any]:
        """The error log's JSON object."""
        rec = {"severity": self.severity, "table": self.table, "_id": self.source_id, "uuid": self.uuid,
               "reason": self.reason, "field": self.field, "message": self.message}
        if self.document is not None:
            rec["document"] = self.document
        return rec

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> Issue:
        return cls(rec["severity"], rec["table"], rec.get("_id"), rec.get("uuid"), rec["reason"], rec.get("field"),
                   rec["message"], rec.get("document"))

    def copy_line(self) -> str:
        """A line for COPY into mongo2pg.rejects: it must take any text, including what PostgreSQL refused
        as data (a NUL or invalid UTF-8 is written as an escape)."""
        fields = (self.severity, self.table, self.source_id, self.uuid, self.reason, self.field, self.message,
                  self.document)
        return "\t".join(_copy_text(None if f is None else str(f).replace("\x00", "\\u0000")
                                    .encode("utf-8", "backslashreplace").decode("utf-8")) for f in fields) + "\n"


def _copy_text(value: str | None) -> str:
    if value is None:
        return "\\N"
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _line(issue: Issue) -> str:
    return json.dumps(issue.to_record(), ensure_ascii=True) + "\n"


def append_issues(path: str | Path, issues: Iterable[Issue]) -> None:
    """Add issues to the error log as they happen (the file is rewritten from the state at the end)."""
    issues = list(issues)
    if issues:
        with open_private(path, "a") as f:
            f.writelines(_line(i) for i in issues)


def write_error_log(path: str | Path, issues: Iterable[Issue]) -> int:
    """Replace the error log atomically with `issues`; returns how many were written."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    n = 0
    with open_private(tmp) as f:
        for issue in issues:
            f.write(_line(issue))
            n += 1
    os.replace(tmp, path)
    return n


def read_error_log(path: str | Path) -> Iterator[Issue]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield Issue.from_record(json.loads(line))


class ErrorLogAccount:
    """What the error log accounts for, per table: rejected ids, fields set to NULL, dropped links. A record
    loaded again later (a `remigrated` entry), or gone from the source since (`removed`), is no longer
    rejected, nor its fields fixed."""

    def __init__(self, path: str | Path | None = None):
        self.rejected: dict[str, set[str]] = defaultdict(set)
        self.fixed: dict[tuple[str, str], set[str]] = defaultdict(set)  # (table, field) -> ids set to NULL
        self.dangling_links: dict[str, int] = defaultdict(int)
        self.present = path is not None and Path(path).exists()
        if self.present:
            self.take(read_error_log(path))

    def take(self, issues: Iterable[Issue]) -> ErrorLogAccount:
        """Account for these entries, in the order they were logged."""
        for i in issues:
            if i.reason in (REMIGRATED, REMOVED):  # loaded again since, or gone: what was logged of it is past
                self.rejected[i.table].discard(i.source_id)
                for (table, _), ids in self.fixed.items():
                    if table == i.table:
                        ids.discard(i.source_id)
            elif i.severity == REJECT and i.source_id:
                self.rejected[i.table].add(i.source_id)
            elif i.reason == "dangling_reference":
                self.fixed[(i.table, i.field)].add(i.source_id)
            elif i.reason == "junction_dangling":
                self.dangling_links[i.table] += 1
        return self
