"""Where a migration's time goes: seconds per stage, in the run's summary (and `make bench`'s breakdown).

Stages of the load are worker-seconds, added up over the worker processes (read, decode and transform,
COPY of the rows, COPY of the staged links, checkpoint and commit); the steps after it are wall seconds
of the run, except the index builds, foreign-key work and ANALYZEs, which are connection-seconds (they
run side by side).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

_LOCK = threading.Lock()  # the index builds time themselves from threads (connect.run_on_connections)


class Stages(Counter):
    """Seconds by stage name."""

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - started
            with _LOCK:
                self[name] += elapsed

    def rounded(self) -> dict[str, float]:
        return {name: round(seconds, 2) for name, seconds in self.items()}
