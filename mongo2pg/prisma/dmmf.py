"""A schema.prisma read by Prisma's own parser: its DMMF (the npm package @prisma/prisma-schema-wasm,
run by Node through dmmf.js). A hand-written parser would drift from Prisma's grammar and rules. A
MongoDB-era (Prisma 6) schema is read as Prisma 7 reads it (prisma6.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .prisma6 import as_prisma7

SCRIPT = Path(__file__).resolve().parent / "dmmf.js"
NODE_MODULES = Path(__file__).resolve().parent.parent.parent / "node_modules"


class PrismaSchemaError(ConfigError):
    """Prisma refused the schema (its own message, with the line it points at)."""


def read_dmmf(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such schema.prisma")
    node = shutil.which("node")
    if node is None:
        raise ConfigError("Node.js is needed to read a schema.prisma with Prisma's parser: run `make setup`")
    env = dict(os.environ, NODE_PATH=str(NODE_MODULES))
    text = as_prisma7(path.read_text(encoding="utf-8"))
    r = subprocess.run([node, str(SCRIPT), str(path)], input=text, capture_output=True, text=True, env=env)
    if r.returncode == 1:
        raise PrismaSchemaError(f"{path}: Prisma refused the schema:\n{r.stderr.strip()}")
    if r.returncode:
        raise ConfigError(f"{path}: {r.stderr.strip() or 'reading the schema failed'}")
    return json.loads(r.stdout)
