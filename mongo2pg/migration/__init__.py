"""The migration: options.py (every knob), state.py (the run's state in the target), copy.py (COPY of a
batch with its checkpoint), load.py (parts and worker processes), settle.py (dangling references,
junctions, ANALYZE), progress.py (events, mirror and progress files), retry.py (outages), summary.py,
and run.py (the run in order, plan, reconcile)."""

from .options import Options
from .run import plan, reconcile, run
from .state import Checkpoint, status
from .summary import Summary, TableReport

__all__ = ["Checkpoint", "Options", "Summary", "TableReport", "plan", "reconcile", "run", "status"]
