"""What a migration run is asked to do: every knob, with its default and help, in one dataclass (the CLI's
flags and the Ansible module's options are made from it: mongo2pg/options.py)."""

from __future__ import annotations

from dataclasses import dataclass

from ..connect import BULK_SESSION, pg_connect
from ..options import RunOptions, knob


@dataclass
class Options(RunOptions):
    batch_size: int = knob(5000, "documents per COPY transaction, at most")
    batch_bytes: int = knob(16 << 20, "BSON bytes per COPY transaction, at most (a batch holds one document at "
                            "least), so that memory follows this bound rather than the documents' size",
                            metavar="BYTES")
    # A dump collection of at least twice this many documents loads as ranges side by side (one per worker).
    split_documents: int = knob(100_000, "with a dump, a collection of at least 2N documents loads as ranges of "
                                "at least N, one per worker, side by side; the split is stored with the run, so a "
                                "resume uses the same ranges; 0 never splits", metavar="N")
    checkpoint_file: str = knob("migration-checkpoint.json", "human-readable mirror of the checkpoint; deleted on "
                                "success, archived on fresh", path=True)
    progress_file: str | None = knob(None, "machine-readable progress JSON, rewritten atomically each batch",
                                     path=True)
    # The runbook's progress sheet (6.2 step 3) as CSV: time, phase, table, records, % complete, speed, errors;
    # a row per table at its start, every progress_sheet_seconds while it loads, and at its end.
    progress_sheet: str | None = knob(None, "the runbook's progress sheet as CSV (time, phase, table, records, "
                                      "% complete, speed, errors), appended while it runs", path=True)
    progress_sheet_seconds: float = knob(10.0, "seconds between a loading table's rows in the progress sheet")
    fresh: bool = knob(False, "start over: empty the target tables and the checkpoint instead of resuming")
    online: bool = knob(False, "the bulk of an online migration: the source keeps changing while it is read (its "
                        "changes captured by `mongo2pg online capture`, opened first), so counts are reconciled at "
                        "cutover, after the catch-up, not at the end of this read")
    # The runbook's real-time decision tree (6.2 step 4): a HIGH line over warn_error_rate, a checkpointed
    # stop over max_error_rate, under min_free_disk on the target, or under min_free_memory here; no
    # progress for hang_seconds of the load is reported, and stopped when on_hang is "stop".
    warn_error_rate: float = knob(0.01, "a HIGH line, with the top reasons, when a table rejects more than this "
                                  "fraction of its records")
    max_error_rate: float = knob(0.05, "stop (checkpointed) when a table rejects more than this fraction")
    min_free_disk: float = knob(0.10, "stop (checkpointed) when the target's disk has less than this fraction free")
    min_free_memory: float = knob(0.10, "stop (checkpointed) when the migration host (or its memory cgroup) has "
                                  "less than this fraction available")
    hang_seconds: float = knob(600.0, "no progress in the load this long: reported as hung, with what to check")
    on_hang: str = knob("stop", "a hung load is stopped (checkpointed, resumable) or only reported",
                        choices=("stop", "report"))
    finalize: bool = knob(True, "create indexes and foreign keys after the load", flag="--no-finalize",
                          inverted=True, flag_help="leave indexes and foreign keys for `schema finalize`",
                          module=False)  # a phase always finalizes (30_migrate)

    def connect_bulk(self):
        """A connection for the whole-table statements after the load."""
        return pg_connect(self.pg_uri, settings=BULK_SESSION)
