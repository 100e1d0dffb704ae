"""What a validation run is asked to do: every knob, with its default and help, in one dataclass (the CLI's
flags and the Ansible module's options are made from it: mongo2pg/options.py)."""

from __future__ import annotations

from dataclasses import dataclass

from ..connect import BULK_SESSION, pg_connect
from ..options import RunOptions, knob


@dataclass
class ValidateOptions(RunOptions):
    report: str = knob("migration-validation-report.json", "path of the JSON report (the .md summary goes beside "
                       "it)", path=True)
    sample: int = knob(0, "check a seeded random sample of N rows per table (0: every row)")
    seed: int = knob(1, "seed of the sample's random choice")
    min_match: float = knob(99.0, "minimum field match percentage")
    strict: bool = knob(True, "zero unexplained mismatches required", flag="--lenient", inverted=True,
                        flag_help="allow mismatches up to --min-match (default: strict)")
    reference_schema: str | None = knob(None, "schema JSON the target must equal (default: from the mapping)",
                                        path=True)
    baseline: str | None = knob(None, "online migration, before the window: also write this pass's baseline here "
                                "(the capture's position, what differed, the junctions' links; mode 0600)", path=True)
    since: str | None = knob(None, "online cutover: check again only what changed after the baseline's pass, "
                             "with every count reconciled (a missing or stale baseline: every record)", path=True)

    def connect_read_only(self):
        """A read-only connection for the checks: validation never writes."""
        conn = pg_connect(self.pg_uri, "mongo2pg-validate", settings=BULK_SESSION)
        conn.set_session(readonly=True)
        return conn
