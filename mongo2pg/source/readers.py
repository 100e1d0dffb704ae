"""Sources: a live MongoDB (pymongo) or a mongodump directory, behind one interface.

Both yield a collection's documents in batches from a resume point: the live
reader sorts by _id and resumes after the last committed _id; the dump reader
resumes at the committed document ordinal (a dump file never changes).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any, Protocol

from bson import ObjectId
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument

from ..connect import mongo_client
from ..errors import ConfigError
from ..redact import redact_uri
from . import dumpfmt

RAW = CodecOptions(document_class=RawBSONDocument)
FETCH_IDS = 5_000  # ids per look-up: a query stays far below MongoDB's 16 MB


@dataclass(frozen=True)
class ResumePoint:
    position: int = 0  # documents already consumed
    last_id: str | None = None  # hex of the last consumed _id (live sources)
    # A collection of string ids resumes by position: its _ids may hold several BSON types, and `$gt` on a
    # string would skip the types sorting after strings (the source is frozen while a run resumes).
    text_id: bool = False


class Source(Protocol):
    label: str

    def collections(self) -> set[str]: ...

    def count(self, collection: str) -> int: ...

    def batches(self, collection: str, resume: ResumePoint, size: int, stop: int | None = None,
                max_bytes: int | None = None) -> Iterator[list[bytes]]: ...

    def fetch(self, collection: str, ids: set[str]) -> dict[str, dict[str, Any]]: ...

    def fetch_raw(self, collection: str, ids: set[str]) -> Iterator[bytes | memoryview]: ...

    def iter_all(self, collection: str) -> Iterator[dict[str, Any]]: ...

    def iter_raw(self, collection: str) -> Iterator[bytes | memoryview]: ...

    def size_bytes(self) -> int: ...

    def work_hint(self, collection: str) -> int: ...

    def close(self) -> None: ...


def _id_forms(ids: set[str]) -> list[Any]:
    """The `_id`s to ask a live source for, from their str() forms: an ObjectId's hex both as the ObjectId and as
    it is (a table of string ids may hold such a string), sorted."""
    return [ObjectId(i) for i in sorted(ids) if ObjectId.is_valid(i)] + sorted(ids)


def tune_gc_for_documents() -> None:
    """For a process about to stream many documents. Decoded documents hold no reference cycles, so
    reference counting frees them; left at its defaults, the cycle collector traverses every live batch
    again and again (it doubled the decode time). Freeze what is alive now, and look for cycles rarely."""
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


def _chunks(sized: Iterator[tuple[Any, int]], size: int, max_bytes: int | None) -> Iterator[list[Any]]:
    """Batches of at most `size` documents and (past the first document) at most `max_bytes` of BSON:
    the memory of a batch follows the bound, not the documents' size."""
    limit = max_bytes if max_bytes and max_bytes > 0 else 1 << 62
    batch: list[Any] = []
    held = 0
    for doc, n in sized:
        if batch and held + n > limit:
            yield batch
            batch, held = [], 0
        batch.append(doc)
        held += n
        if len(batch) >= size:
            yield batch
            batch, held = [], 0
    if batch:
        yield batch


class DumpSource:
    def __init__(self, dump: str, db: str = "nextcrm"):
        self.db_dir = dumpfmt.resolve_db_dir(dump, db)
        self._colls = dumpfmt.list_collections(self.db_dir)
        self._counts: dict[str, int] = {}
        self.label = f"dump {self.db_dir}"

    def collections(self) -> set[str]:
        return set(self._colls)

    def count(self, collection: str) -> int:
        if collection not in self._colls:
            return 0
        if collection not in self._counts:
            self._counts[collection] = dumpfmt.count_documents(self._colls[collection])
        return self._counts[collection]

    def batches(self, collection: str, resume: ResumePoint, size: int, stop: int | None = None,
                max_bytes: int | None = None) -> Iterator[list[bytes]]:
        """Raw BSON documents from ordinal resume.position up to `stop` (exclusive; None: the end)."""
        if collection not in self._colls:
            return iter(())
        docs = dumpfmt.iter_raw_sized(self._colls[collection], resume.position)
        if stop is not None:
            docs = islice(docs, max(0, stop - resume.position))
        return _chunks(docs, size, max_bytes)

    def iter_all(self, collection: str) -> Iterator[dict[str, Any]]:
        if collection not in self._colls:
            return iter(())
        return dumpfmt.iter_documents(self._colls[collection])

    def iter_raw(self, collection: str) -> Iterator[bytes]:
        """Every document as raw BSON, in file order."""
        if collection not in self._colls:
            return iter(())
        return dumpfmt.iter_raw(self._colls[collection])

    def fetch(self, collection: str, ids: set[str]) -> dict[str, dict[str, Any]]:
        """Documents by _id hex: one scan of the file (used only for the rare late reject)."""
        found: dict[str, dict[str, Any]] = {}
        if not ids or collection not in self._colls:
            return found
        for doc in dumpfmt.iter_documents(self._colls[collection]):
            key = str(doc.get("_id"))
            if key in ids:
                found[key] = doc
                if len(found) == len(ids):
                    break
        return found

    def fetch_raw(self, collection: str, ids: set[str]) -> Iterator[bytes]:
        """Documents by str(_id), raw, in file order: one scan of the file."""
        if not ids or collection not in self._colls:
            return iter(())
        return (raw for raw in dumpfmt.iter_raw(self._colls[collection]) if str(RawBSONDocument(raw)["_id"]) in ids)

    def size_bytes(self) -> int:
        """Bytes of the dump's files (compressed when the dump is)."""
        return sum(p.stat().st_size for p in self.db_dir.iterdir() if p.is_file())

    def work_hint(self, collection: str) -> int:
        """How much reading a collection is, for ordering work (its file's size: counting walks the file)."""
        return self._colls[collection].bson_path.stat().st_size if collection in self._colls else 0

    def close(self) -> None:
        pass


class MongoSource:
    def __init__(self, uri: str, db: str = "nextcrm"):
        self.client = mongo_client(uri)
        self.db = self.client.get_database(db, codec_options=dumpfmt.CODEC)
        self.label = f"mongodb {redact_uri(uri)} db={db}"
        names = set(self.db.list_collection_names())
        if not names:
            raise ConfigError(f"MongoDB database {db!r} has no collections at {redact_uri(uri)} (check --db)")
        self._names = names
        self._in_works: dict[tuple[str, str], bool] = {}  # holding(): does $in on the field answer right

    def collections(self) -> set[str]:
        return self._names

    def count(self, collection: str) -> int:
        return self.db[collection].count_documents({}) if collection in self._names else 0

    def batches(self, collection: str, resume: ResumePoint, size: int, stop: int | None = None,
                max_bytes: int | None = None) -> Iterator[list[bytes | memoryview]]:
        """Raw BSON documents in _id order, after resume.last_id."""
        if stop is not None:
            raise ValueError("a live collection is read whole, in _id order (ordinal ranges are for dumps)")
        if collection not in self._names:
            return iter(())
        query: dict[str, Any] = {}
        skip = 0
        if resume.text_id:
            skip = resume.position
        elif resume.last_id:
            query = {"_id": {"$gt": ObjectId(resume.last_id)}}
        cursor = self.db.get_collection(collection, codec_options=RAW).find(query, sort=[("_id", 1)], skip=skip,
                                                                             batch_size=size)
        return _chunks(((d.raw, len(d.raw)) for d in cursor), size, max_bytes)

    def iter_all(self, collection: str) -> Iterator[dict[str, Any]]:
        if collection not in self._names:
            return iter(())
        return self.db[collection].find({}, sort=[("_id", 1)], batch_size=5000)

    def iter_raw(self, collection: str) -> Iterator[bytes | memoryview]:
        """Every document as raw BSON (pymongo hands some replies' documents as memoryviews), in _id order."""
        if collection not in self._names:
            return iter(())
        return (d.raw for d in self.db.get_collection(collection, codec_options=RAW).find({}, sort=[("_id", 1)],
                                                                                           batch_size=5000))

    def fetch(self, collection: str, ids: set[str]) -> dict[str, dict[str, Any]]:
        if not ids:
            return {}
        return {str(d["_id"]): d for d in self.db[collection].find({"_id": {"$in": _id_forms(ids)}})}

    def fetch_raw(self, collection: str, ids: set[str]) -> Iterator[bytes | memoryview]:
        """Documents by str(_id), raw, in _id order within each look-up of FETCH_IDS ids (by the _id index)."""
        if not ids or collection not in self._names:
            return iter(())
        wanted, coll = _id_forms(ids), self.db.get_collection(collection, codec_options=RAW)
        return (d.raw for at in range(0, len(wanted), FETCH_IDS)
                for d in coll.find({"_id": {"$in": wanted[at:at + FETCH_IDS]}}, sort=[("_id", 1)]))

    def holding(self, collection: str, field_name: str, values: set) -> list[dict[str, Any]] | None:
        """The documents (their `_id` and that field) whose field is one of `values` or an array holding one, by
        a query (with an index on the field, a look-up); None when this server answers such a query wrongly, or
        cannot be asked yet, so the caller reads the field whole. Probed once per field."""
        if collection not in self._names:
            return []
        key = (collection, field_name)
        if key not in self._in_works:
            works = self._probe_in(collection, field_name)
            if works is None:
                return None
            self._in_works[key] = works
        if not self._in_works[key]:
            return None
        coll, wanted = self.db[collection], sorted(values, key=repr)
        return [d for at in range(0, len(wanted), FETCH_IDS)
                for d in coll.find({field_name: {"$in": wanted[at:at + FETCH_IDS]}}, {field_name: 1})]

    def _probe_in(self, collection: str, field_name: str) -> bool | None:
        """Does `$in` find a document by a value its field holds (an array's element when a sampled document holds
        an array: the case a server may get wrong; the lab's stand-in matches no array element)? None: no
        sampled document holds a value to ask with."""
        picked: tuple[Any, Any, bool] | None = None
        for d in self.db[collection].find({field_name: {"$exists": True}}, {field_name: 1}).limit(50):
            v = d.get(field_name)
            for e in v if isinstance(v, list) else [v]:
                if isinstance(e, (str, ObjectId)) and (picked is None or (isinstance(v, list) and not picked[2])):
                    picked = (d["_id"], e, isinstance(v, list))
        if picked is None:
            return None
        return any(d["_id"] == picked[0] for d in self.db[collection].find({field_name: {"$in": [picked[1]]}}, {"_id": 1}))

    def size_bytes(self) -> int:
        """The database's data size as MongoDB reports it (dbStats)."""
        return int(self.db.command("dbStats").get("dataSize", 0))

    def work_hint(self, collection: str) -> int:
        """How much reading a collection is, for ordering work (the collection's metadata count)."""
        return self.db[collection].estimated_document_count() if collection in self._names else 0

    def close(self) -> None:
        self.client.close()


def open_source(mongo_uri: str | None, dump: str | None, db: str) -> DumpSource | MongoSource:
    if bool(mongo_uri) == bool(dump):
        raise ConfigError("give exactly one source: --mongo-uri URI or --dump DIR")
    return DumpSource(dump, db) if dump else MongoSource(mongo_uri, db)
