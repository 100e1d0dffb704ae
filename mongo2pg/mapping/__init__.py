"""The mapping spec: which collection becomes which table, and how.

- `model.py`: what a mapping holds (Column, Index, Table, Junction, Mapping) and the spec's vocabulary
- `parse.py`: YAML -> Mapping, validated, every error with file, line and key path; FK load order
"""

from .model import (
    ALL_TYPES,
    BUILTIN_DIR,
    Column,
    Index,
    Junction,
    JunctionSide,
    JunctionSource,
    Mapping,
    Table,
)
from .parse import load_mapping, parse_mapping, resolve_mapping_path

__all__ = ["ALL_TYPES", "BUILTIN_DIR", "Column", "Index", "Junction", "JunctionSide", "JunctionSource", "Mapping",
           "Table", "load_mapping", "parse_mapping", "resolve_mapping_path"]
