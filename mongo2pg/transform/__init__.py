"""The transform: a document becomes its table's COPY line and the junction links its arrays hold.

- `converters.py`: one converter per column type (value -> COPY text, or Bad with a reason code)
- `compiled.py`: a table's converters folded into one generated row function
- `table.py`: TableTransform (per table: the compiled row, the C builder's plan, the rejects and links)
- `_fastrow.c`: the C row builder, the same rows straight from raw BSON for the common cases (optional)
- `linkstage.py`: the staged junction links, as binary COPY tuples
- `links.py`: the links one document's own arrays hold (remigrate, record)
"""

from .converters import NULL, copy_escape
from .table import BatchResult, TableTransform

__all__ = ["NULL", "BatchResult", "TableTransform", "copy_escape"]
