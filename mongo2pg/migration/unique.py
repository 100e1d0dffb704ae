"""Unique keys, enforced during the load rather than discovered after it.

A MongoDB whose unique indexes were never created (Prisma's `@unique` not pushed) can hold two
documents with the same value; PostgreSQL would refuse the unique index after the whole load. Before
loading, each table with a unique index is read once for its key columns, converted as the transform
converts them. Of documents sharing a key, the one with the smallest _id is kept, so every run and
every resumed run keeps the same one; the others are rejected as `duplicate_key` during the load
(`on_duplicate: reject`), or the run stops before loading and lists them (`on_duplicate: fail`).
NULLs never collide (PostgreSQL's unique indexes treat them as distinct), and a document the
transform rejects for another reason takes no part.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict

from bson import ObjectId

from ..errors import Mongo2PgError
from ..ids import bad_id_reason, row_id
from ..issues import REJECT, Issue
from ..mapping import Index, Mapping, Table
from ..transform import NULL, TableTransform

LISTED = 20  # duplicates named in a `fail` message; all of them are counted


class DuplicateKeys(Mongo2PgError):
    """The source holds duplicates of a unique key whose policy is `on_duplicate: fail`. Exit code 1."""


def unique_indexes(table: Table) -> list[Index]:
    return [i for i in table.indexes if i.unique]


def _key(texts: list[str]) -> bytes | None:
    """A fixed-size key for one document's values of an index (COPY texts hold no tab, so joining is
    unambiguous); None when a value is NULL."""
    if NULL in texts:
        return None
    return hashlib.blake2b("\t".join(texts).encode("utf-8", "surrogatepass"), digest_size=16).digest()


def find_duplicates(mapping: Mapping, source, table: Table) -> dict[str, tuple[Index, Issue]]:
    """The table's documents that lose a unique key to a smaller _id, by _id hex: the index and the reject."""
    indexes = unique_indexes(table)
    if not indexes:
        return {}
    transform = TableTransform(mapping, table)
    # A document by its _id in an order-keeping form: an ObjectId's 12 bytes, a string id itself.
    first: list[dict[bytes, bytes | str]] = [{} for _ in indexes]  # key -> the first _id seen with it
    shared: list[dict[bytes, list[bytes | str]]] = [defaultdict(list) for _ in indexes]  # key -> every _id with it
    values: dict[tuple[int, bytes], str] = {}
    for doc in source.iter_all(table.collection):
        _id = doc.get("_id")
        if bad_id_reason(_id, table.text_id) is not None:
            continue
        if not transform.convert_batch([doc]).lines:
            continue  # rejected by the transform for its own reason: it keeps no value
        ident = _id if table.text_id else _id.binary
        for n, idx in enumerate(indexes):
            texts = transform.column_texts(doc, _id, idx.columns)
            key = _key(texts)
            if key is None:
                continue
            seen = first[n].setdefault(key, ident)
            if seen != ident:
                if key not in shared[n]:
                    shared[n][key].append(seen)
                    values[(n, key)] = ", ".join(texts)
                shared[n][key].append(ident)
    out: dict[str, tuple[Index, Issue]] = {}
    for n, idx in enumerate(indexes):
        for key, ids in shared[n].items():
            # A document already rejected for an earlier index keeps nothing here.
            found = sorted(_document_id(i) for i in ids)
            found = [i for i in found if str(i) not in out]
            kept = found[0] if found else None
            for loser in found[1:]:
                out[str(loser)] = (idx, duplicate_issue(table, loser, idx, values[(n, key)], kept))
    return out


def duplicate_issue(table: Table, loser, idx: Index, value: str, kept) -> Issue:
    """The reject of a document that loses a unique key to a smaller _id (`value`: the key's texts joined)."""
    return Issue(REJECT, table.name, str(loser), row_id(loser), "duplicate_key", ",".join(idx.columns),
                 f"duplicate of unique key {idx.name} ({', '.join(idx.columns)}) = {value[:200]!r}: the document "
                 f"with the smallest _id keeps it ({kept}); this one is not loaded")


def _document_id(ident: bytes | str) -> ObjectId | str:
    return ObjectId(ident) if isinstance(ident, bytes) else ident


def duplicates_by_table(mapping: Mapping, source) -> dict[str, dict[str, Issue]]:
    """Every table's duplicate losers, by _id hex, as their rejects; stops here, before any row is loaded,
    where a duplicated index's policy is `fail`."""
    found = {t.name: find_duplicates(mapping, source, t) for t in mapping.tables.values() if unique_indexes(t)}
    failing = [(idx, i) for dups in found.values() for idx, i in dups.values() if idx.on_duplicate == "fail"]
    if failing:
        listed = "; ".join(f"{i.table} _id {i.source_id}: {i.message.split(': the document')[0]}"
                           for _, i in failing[:LISTED])
        raise DuplicateKeys(f"{len(failing)} document(s) duplicate a unique key whose policy is on_duplicate: fail, "
                            f"so nothing was loaded: {listed}" + (" ..." if len(failing) > LISTED else "")
                            + " -- fix them in MongoDB, or set on_duplicate: reject to keep the smallest _id of each")
    return {name: {h: i for h, (_, i) in dups.items()} for name, dups in found.items() if dups}
