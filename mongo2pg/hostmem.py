"""How much memory this host (or the container the process runs in) still has, as a fraction.

The lower of two readings: the kernel's MemAvailable against MemTotal, and, when the process runs in a
memory cgroup with a limit (v2 `memory.max`, or v1 `memory.limit_in_bytes`), that limit less the
cgroup's working set (its usage less the page cache it can drop). A migration reading a large dump
fills the page cache; that is not memory the run is short of.
"""

from __future__ import annotations

from pathlib import Path

_UNLIMITED = 1 << 60


def meminfo_fraction() -> float:
    """The kernel's MemAvailable against MemTotal, for the whole host (cgroups aside)."""
    info = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, _, rest = line.partition(":")
        info[key] = int(rest.split()[0])
    return info["MemAvailable"] / info["MemTotal"]


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return _UNLIMITED if text == "max" else int(text)


def _stat(path: Path, *keys: str) -> int:
    try:
        stats = dict(line.split() for line in path.read_text().splitlines())
    except OSError:
        return 0
    return next((int(stats[k]) for k in keys if k in stats), 0)


def _cgroup_fraction() -> float | None:
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        rel = path.lstrip("/")
        if controllers == "":  # v2
            base = Path("/sys/fs/cgroup") / rel
            limit, usage = _read_int(base / "memory.max"), _read_int(base / "memory.current")
            cache = _stat(base / "memory.stat", "inactive_file")
        elif "memory" in controllers.split(","):  # v1
            base = Path("/sys/fs/cgroup/memory") / rel
            limit, usage = _read_int(base / "memory.limit_in_bytes"), _read_int(base / "memory.usage_in_bytes")
            cache = _stat(base / "memory.stat", "total_inactive_file", "inactive_file")
        else:
            continue
        if limit and usage is not None and limit < _UNLIMITED:
            return max(0.0, (limit - max(0, usage - cache)) / limit)
    return None


def available_fraction() -> float:
    """Available memory as a fraction of what this process may use (1.0 when nothing can be read)."""
    try:
        host = meminfo_fraction()
    except (OSError, KeyError, ValueError, ZeroDivisionError):
        host = 1.0
    cgroup = _cgroup_fraction()
    return host if cgroup is None else min(host, cgroup)
