"""What a migration run reports: per table source, loaded, rejected and fix-ups, and the totals.

The summary is stored with the run's state when the run ends (so rerunning a completed migration
reports it again and changes nothing) and returned to the CLI and the Ansible module.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class TableReport:
    table: str
    collection: str
    source: int = 0
    loaded: int = 0
    rejected: int = 0
    fixups: int = 0
    seconds: float = 0.0
    absent: bool = False

    @property
    def reconciled(self) -> bool:
        return self.source == self.loaded + self.rejected


@dataclass
class Summary:
    status: str
    seconds: float
    tables: list[TableReport]
    junctions: dict[str, dict[str, int]]
    unmapped_collections: list[str]
    unknown_fields: dict[str, dict[str, int]] = field(default_factory=dict)
    duplicate_links_merged: int = 0
    already_complete: bool = False
    error_log: str = ""
    source: str = ""
    target: str = ""
    stages: dict[str, float] = field(default_factory=dict)  # seconds by stage (stages.py says which are wall)
    online: bool = False  # the source kept changing under the read: its counts are reconciled at cutover

    def totals(self) -> dict[str, Any]:
        src = sum(t.source for t in self.tables)
        loaded = sum(t.loaded for t in self.tables)
        rej = sum(t.rejected for t in self.tables)
        return {"source": src, "loaded": loaded, "rejected": rej, "fixups": sum(t.fixups for t in self.tables),
                "junction_rows": sum(j["rows"] for j in self.junctions.values()),
                "reconciled": all(t.reconciled for t in self.tables), "seconds": round(self.seconds, 2),
                "documents_per_second": round(src / self.seconds) if self.seconds else 0}

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "online": self.online, "totals": self.totals(), "source": self.source, "target": self.target,
                # The rate from the unrounded seconds: a small table loads in well under a millisecond.
                "tables": [dict(asdict(t), seconds=round(t.seconds, 3), reconciled=t.reconciled,
                                records_per_second=round(t.source / t.seconds) if t.seconds else None)
                           for t in self.tables],
                "junctions": self.junctions, "unmapped_collections": self.unmapped_collections,
                "unknown_fields": self.unknown_fields, "duplicate_links_merged": self.duplicate_links_merged,
                "already_complete": self.already_complete,
                "error_log": self.error_log, "stages": self.stages}

    @classmethod
    def from_json(cls, data: dict[str, Any], already_complete: bool = False) -> Summary:
        """A stored summary read back (for a rerun of a completed migration)."""
        tables = [TableReport(**{k: t[k] for k in ("table", "collection", "source", "loaded", "rejected", "fixups",
                                                    "seconds", "absent")}) for t in data["tables"]]
        return cls(status=data["status"], seconds=data["totals"]["seconds"], tables=tables,
                   junctions=data["junctions"], unmapped_collections=data["unmapped_collections"],
                   unknown_fields=data["unknown_fields"], duplicate_links_merged=data.get("duplicate_links_merged", 0),
                   already_complete=already_complete, error_log=data["error_log"], source=data["source"],
                   target=data["target"], stages=data.get("stages", {}), online=data.get("online", False))
