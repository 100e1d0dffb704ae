"""Validation: options.py, run.py (the run: tables in worker processes beside the database checks),
rows.py (the per-table proof), database.py (orphans, junctions, type ranges, schema), expect.py (what
the target must hold, independent of the transform), report.py (JSON and Markdown).

The names below load their modules when first used (see migration/__init__.py for why)."""

from importlib import import_module

from .options import ValidateOptions

_LAZY = {"markdown_summary": "report", "write_report": "report", "validate": "run"}
__all__ = ["ValidateOptions", "markdown_summary", "validate", "write_report"]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
