"""What every run of the engine is given: the source, the target, the mapping, its error log and its
worker count. Migration and validation options extend it (migration/options.py, validation/options.py)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Self

from .workers import worker_count


@dataclass
class RunOptions:
    pg_uri: str
    mongo_uri: str | None = None
    dump: str | None = None
    db: str = "nextcrm"
    mapping: str = "nextcrm"
    error_log: str = "migration-errors.log"
    workers: int = 0  # 0: sized to the machine (one per CPU, at most 4)

    @classmethod
    def from_values(cls, values: dict[str, Any]) -> Self:
        """Options from a dict holding (at least) the required fields, e.g. the CLI's parsed arguments or a
        module's params; other keys are ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})

    def worker_count(self) -> int:
        return worker_count(self.workers)
