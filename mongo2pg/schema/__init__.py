"""The target's schema: `ddl.py` (DDL from the mapping: apply, finalize, and their checks) and
`describe.py` (a schema as data: the live one, the one a mapping expects, their differences)."""

from .ddl import (
    PG_TYPES,
    ConstraintRefused,
    apply,
    column_type,
    finalize,
    reference_type,
    unfinalize,
)
from .describe import describe, diff_schemas, expected_schema, verify_applied

__all__ = ["PG_TYPES", "ConstraintRefused", "apply", "column_type", "describe", "diff_schemas", "expected_schema",
           "finalize", "reference_type", "unfinalize", "verify_applied"]
