"""Worker processes for the load and the validation: forked, and gone when their parent is.

A killed migration must stop whole: an orphaned worker would go on loading its table and, holding a
copy of the parent's connection, keep the run's advisory lock, so that the rerun is refused until
it finishes. On Linux each worker asks the kernel for SIGKILL when its parent dies.
"""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def fork_pool(processes: int):
    """A multiprocessing pool of `processes` forked workers that die with this process."""
    return mp.get_context("fork").Pool(processes, initializer=_die_with_parent, initargs=(os.getpid(),))


def worker_count(requested: int) -> int:
    """Worker processes for a run: `requested`, or with 0 (or less) one per CPU, at most 4 (past that the
    target's own cores, not ours, are the limit on these loads)."""
    return requested if requested > 0 else max(1, min(4, os.cpu_count() or 1))
