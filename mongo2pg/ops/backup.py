"""MongoDB backups in mongodump's format: dump, restore, counts and checksums.

Used where `mongodump`/`mongorestore` are not installed (the roles prefer them when they are).
Both directions stream raw BSON (no decode/encode), so memory does not grow with a collection's
size. A dump is consistent when nothing writes meanwhile: the runbook stops the application
(phase 20) before the final backup.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo.errors import BulkWriteError, PyMongoError

from ..connect import mongo_client
from ..errors import ConfigError, Mongo2PgError
from ..files import open_private
from ..redact import redact_uri
from ..source import dumpfmt

CHECKSUMS_FILE = "backup-checksums.txt"
RAW = CodecOptions(document_class=RawBSONDocument)
# Bounds the memory of a restore: one batch of raw documents (and its wire message) at a time.
INSERT_BATCH_BYTES = 2 << 20
ProgressFn = Callable[[str, int, int], None]  # collection, documents so far, total


@dataclass
class CollectionResult:
    name: str
    documents: int
    indexes: int


@dataclass
class TransferResult:
    db: str
    collections: list[CollectionResult] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {c.name: c.documents for c in self.collections}


def _user_collections(db) -> list[str]:
    return sorted(n for n in db.list_collection_names() if not n.startswith("system."))


def dump_database(mongo_uri: str, db: str, out: str | Path, gzip_files: bool = False,
                  progress: ProgressFn | None = None) -> TransferResult:
    """Write `<out>/<db>/<coll>.bson[.gz]` and `.metadata.json[.gz]` for every collection, in `_id` order."""
    client = mongo_client(mongo_uri)
    try:
        source = client.get_database(db, codec_options=RAW)
        names = _user_collections(source)
        if not names:
            raise ConfigError(f"MongoDB database {db!r} has no collections at {redact_uri(mongo_uri)} (check --db)")
        writer = dumpfmt.DumpWriter(out, db, gzip_files)
        result = TransferResult(db)
        for name in names:
            coll = source[name]
            total = coll.estimated_document_count()
            indexes = [dict(ix) for ix in client.get_database(db)[name].list_indexes()]
            options = client.get_database(db)[name].options()
            docs = _raw_stream(coll.find({}, sort=[("_id", 1)], batch_size=2000), name, total, progress)
            n = writer.write_collection(name, docs, indexes=indexes, options=options)
            result.collections.append(CollectionResult(name, n, len(indexes)))
            if progress:
                progress(name, n, n)
        return result
    except PyMongoError as exc:
        raise Mongo2PgError(f"dump of {db!r} from {redact_uri(mongo_uri)} failed: {exc}") from None
    finally:
        client.close()


def _raw_stream(cursor, name: str, total: int, progress: ProgressFn | None) -> Iterator[bytes]:
    for n, doc in enumerate(cursor, 1):
        yield doc.raw
        if progress and n % 50_000 == 0:
            progress(name, n, total)


def restore_database(dump: str | Path, mongo_uri: str, db: str = "nextcrm", target_db: str | None = None,
                     drop: bool = False, progress: ProgressFn | None = None) -> TransferResult:
    """Insert every collection of the dump (documents, then its indexes) into `target_db`."""
    db_dir = dumpfmt.resolve_db_dir(dump, db)
    collections = dumpfmt.list_collections(db_dir)
    if not collections:
        raise ConfigError(f"dump folder {db_dir} holds no .bson files")
    target_name = target_db or db
    client = mongo_client(mongo_uri)
    try:
        target = client.get_database(target_name, codec_options=RAW)
        existing = set(_user_collections(target))
        busy = sorted(n for n in collections if n in existing and target[n].estimated_document_count())
        if busy and not drop:
            raise ConfigError(f"target database {target_name!r} already holds {', '.join(busy[:5])}"
                              f"{' ...' if len(busy) > 5 else ''}; use --drop to replace them or another --target-db")
        result = TransferResult(target_name)
        for name, coll in collections.items():
            if drop:
                target.drop_collection(name)
            total = dumpfmt.count_documents(coll) if progress else 0
            n = _insert_raw(target[name], dumpfmt.iter_raw(coll), name, total, progress)
            indexes = _create_indexes(client.get_database(target_name)[name], dumpfmt.read_metadata(coll))
            result.collections.append(CollectionResult(name, n, indexes))
            if progress:
                progress(name, n, n)
        return result
    except BulkWriteError as exc:
        first = (exc.details.get("writeErrors") or [{}])[0].get("errmsg", str(exc))
        raise Mongo2PgError(f"restore into {target_name!r} failed: {first}") from None
    except PyMongoError as exc:
        raise Mongo2PgError(f"restore into {target_name!r} at {redact_uri(mongo_uri)} failed: {exc}") from None
    finally:
        client.close()


def _insert_raw(coll, raw_docs: Iterator[bytes], name: str, total: int, progress: ProgressFn | None) -> int:
    batch: list[RawBSONDocument] = []
    size = n = 0
    for raw in raw_docs:
        batch.append(RawBSONDocument(raw))
        size += len(raw)
        if size >= INSERT_BATCH_BYTES or len(batch) >= 5000:
            coll.insert_many(batch, ordered=True)
            n += len(batch)
            batch, size = [], 0
            if progress:
                progress(name, n, total)
    if batch:
        coll.insert_many(batch, ordered=True)
        n += len(batch)
    return n


def _create_indexes(coll, metadata: dict[str, Any]) -> int:
    made = 0
    for ix in metadata.get("indexes", []):
        if ix.get("name") == "_id_":
            continue
        keys = list(ix["key"].items())
        options = {k: v for k, v in ix.items() if k not in ("key", "v", "ns")}
        coll.create_index(keys, **options)
        made += 1
    return made


def collection_counts(mongo_uri: str, db: str) -> dict[str, int]:
    """Exact per-collection counts of a live database (the baseline the runbook records)."""
    client = mongo_client(mongo_uri)
    try:
        database = client.get_database(db)
        return {n: database[n].count_documents({}) for n in _user_collections(database)}
    finally:
        client.close()


def drop_database(mongo_uri: str, db: str) -> None:
    client = mongo_client(mongo_uri)
    try:
        client.drop_database(db)
    finally:
        client.close()


def dump_counts(dump: str | Path, db: str = "nextcrm") -> dict[str, int]:
    db_dir = dumpfmt.resolve_db_dir(dump, db)
    return {name: dumpfmt.count_documents(c) for name, c in dumpfmt.list_collections(db_dir).items()}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _data_files(root: Path) -> list[Path]:
    """Every file of the backup except the checksum list and the manifests written after it."""
    skip = {CHECKSUMS_FILE}
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name not in skip
                  and not p.name.startswith("backup-manifest"))


def write_checksums(root: str | Path) -> tuple[Path, int, bool]:
    """Write `backup-checksums.txt` (sha256sum format). Returns (path, files, changed)."""
    root = Path(root)
    lines = [f"{_sha256(p)}  {p.relative_to(root).as_posix()}\n" for p in _data_files(root)]
    if not lines:
        raise ConfigError(f"backup folder {root} holds no files to checksum")
    path = root / CHECKSUMS_FILE
    text = "".join(lines)
    if path.exists() and path.read_text() == text:
        return path, len(lines), False
    with open_private(path) as f:
        f.write(text)
    return path, len(lines), True


def verify_checksums(root: str | Path) -> list[str]:
    """Recheck every file listed in `backup-checksums.txt`; return the problems (empty when all match)."""
    root = Path(root)
    path = root / CHECKSUMS_FILE
    if not path.exists():
        return [f"{path} is missing"]
    problems = []
    listed = set()
    for line in path.read_text().splitlines():
        digest, _, rel = line.partition("  ")
        listed.add(rel)
        target = root / rel
        if not target.is_file():
            problems.append(f"{rel}: missing")
        elif _sha256(target) != digest:
            problems.append(f"{rel}: checksum differs (file changed or corrupted)")
    for p in _data_files(root):
        if p.relative_to(root).as_posix() not in listed:
            problems.append(f"{p.relative_to(root).as_posix()}: not in {CHECKSUMS_FILE}")
    return problems


def tree_size(root: str | Path) -> int:
    return sum(p.stat().st_size for p in Path(root).rglob("*") if p.is_file())
