"""The junction rule for one document, as remigrate and record read it: the links its own arrays hold. (The
bulk transform stages the same links as binary rows: table.py and the C row builder.)"""

from __future__ import annotations

from typing import Any

from bson import ObjectId

from ..mapping import Junction


def own_links(j: Junction, collection: str, doc: dict[str, Any]) -> set[tuple[ObjectId, ObjectId]]:
    """(left _id, right _id) of every link the document's arrays in `collection` hold for junction j; an
    element that is no ObjectId holds no link."""
    me, out = doc["_id"], set()
    for s in j.sources:
        arr = doc.get(s.field)
        if s.collection != collection or not isinstance(arr, list):
            continue
        for e in arr:
            if type(e) is ObjectId:
                out.add((me, e) if s.holds == "right" else (e, me))
    return out
