"""Large documents for the memory tests and the bench: consecutive documents of about 1 MB each (a long
text and a jsonb array of items), the shape that multiplied memory when batches were bounded by count."""

from __future__ import annotations

from pathlib import Path

from bson import ObjectId

from mongo2pg.source import dumpfmt


def write_large_documents(out: Path, count: int, size: int) -> None:
    """`count` consecutive documents of about `size` bytes each (a long text and a jsonb of items)."""
    def docs():
        for i in range(count):
            items = [{"sku": f"S{i}-{k}", "qty": k, "note": "n" * 200} for k in range(size // 1000)]
            yield {"_id": ObjectId(f"{i + 1:024x}"), "title": f"invoice {i}", "body": chr(0x41 + i % 26) * (size // 2),
                   "items": items}
    dumpfmt.DumpWriter(out, "nextcrm").write_collection("blobs", docs())


LARGE_DOCUMENTS_MAPPING = """
version: 1
name: blobs
tables:
  blobs:
    collection: blobs
    columns:
      - {name: id, source: _id, type: uuid, primary_key: true}
      - {name: title, type: text, required: true}
      - {name: body, type: text}
      - {name: items, type: jsonb}
"""
