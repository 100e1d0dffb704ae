"""What a migration run is asked to do: every knob, with its default, in one dataclass.

The CLI (`mongo2pg migrate`) and the Ansible module (`library/mongo_pg_migrate.py`) restate these
names and defaults for their users; tests/test_knobs.py holds them together.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..connect import BULK_SESSION, pg_connect
from ..options import RunOptions


@dataclass
class Options(RunOptions):
    batch_size: int = 5000  # documents per COPY transaction, at most
    batch_bytes: int = 16 << 20  # BSON bytes per COPY transaction, at most (a batch holds one document at least)
    checkpoint_file: str = "migration-checkpoint.json"
    progress_file: str | None = None
    # The runbook's progress sheet (6.2 step 3) as CSV: time, phase, table, records, % complete, speed, errors;
    # a row per table at its start, every progress_sheet_seconds while it loads, and at its end.
    progress_sheet: str | None = None
    progress_sheet_seconds: float = 10.0
    fresh: bool = False
    # The runbook's real-time decision tree (6.2 step 4): a HIGH line over warn_error_rate, a checkpointed
    # stop over max_error_rate, under min_free_disk on the target, or under min_free_memory here; no
    # progress for hang_seconds of the load is reported, and stopped when on_hang is "stop".
    warn_error_rate: float = 0.01
    max_error_rate: float = 0.05
    min_free_disk: float = 0.10
    min_free_memory: float = 0.10
    hang_seconds: float = 600.0
    on_hang: str = "stop"
    retry_seconds: float = 300.0
    finalize: bool = True
    # A dump collection of at least twice this many documents loads as ranges side by side (one per worker).
    split_documents: int = 100_000

    def connect_bulk(self):
        """A connection for the whole-table statements after the load."""
        return pg_connect(self.pg_uri, settings=BULK_SESSION)
