"""Private files: everything the engine writes can hold data or credentials, so mode 0600 from birth.

`write_private` replaces a file atomically (a reader never sees half of it; a kill leaves the old one);
`open_private` opens one for writing or appending, created 0600 when it does not exist.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def open_private(path: str | Path, mode: str = "w", encoding: str | None = "utf-8", buffering: int = -1) -> IO:
    """`open()` for writing ('w', 'wb') or appending ('a', 'ab'), the file created with mode 0600."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode.startswith("a") else os.O_TRUNC)
    fd = os.open(path, flags, PRIVATE_FILE)
    if "b" in mode:
        return os.fdopen(fd, mode, buffering=buffering)
    return os.fdopen(fd, mode, encoding=encoding, buffering=buffering)


def write_private(path: str | Path, text: str) -> None:
    """Write `text` to `path` atomically, mode 0600 (via a temporary file beside it)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open_private(tmp) as f:
        f.write(text)
    os.replace(tmp, path)
