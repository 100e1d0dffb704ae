"""The migration: options.py (every knob), state.py (the run's state in the target), copy.py (COPY of a
batch with its checkpoint), load.py (parts and worker processes), settle.py (dangling references,
junctions, ANALYZE), progress.py (events, mirror and progress files), retry.py (outages), summary.py,
and runner.py (the run in order, plan, reconcile).

The names below load their modules when first used, so that the options alone (the CLI's parser, the
monitoring host's small install) import no reader, transform or driver they do not need.
"""

from importlib import import_module

from .options import Options

_LAZY = {"plan": "runner", "reconcile": "runner", "run": "runner", "Checkpoint": "state", "status": "state",
         "Summary": "summary", "TableReport": "summary"}
__all__ = ["Checkpoint", "Options", "Summary", "TableReport", "plan", "reconcile", "run", "status"]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
