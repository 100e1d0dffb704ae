"""What a validation run is asked to do: every knob, with its default, in one dataclass (the CLI and
the Ansible module restate them; tests/test_knobs.py holds them together)."""

from __future__ import annotations

from dataclasses import dataclass

from ..connect import BULK_SESSION, pg_connect
from ..options import RunOptions


@dataclass
class ValidateOptions(RunOptions):
    report: str = "migration-validation-report.json"
    sample: int = 0  # rows per table, seeded; 0: every row
    seed: int = 1
    min_match: float = 99.0
    strict: bool = True
    reference_schema: str | None = None

    def connect_read_only(self):
        """A read-only connection for the checks: validation never writes."""
        conn = pg_connect(self.pg_uri, "mongo2pg-validate", settings=BULK_SESSION)
        conn.set_session(readonly=True)
        return conn
