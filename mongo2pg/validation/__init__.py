"""Validation: options.py, run.py (the run: tables in worker processes beside the database checks),
rows.py (the per-table proof), database.py (orphans, junctions, type ranges, schema), expect.py (what
the target must hold, independent of the transform), report.py (JSON and Markdown)."""

from .options import ValidateOptions
from .report import markdown_summary, write_report
from .run import validate

__all__ = ["ValidateOptions", "markdown_summary", "validate", "write_report"]
