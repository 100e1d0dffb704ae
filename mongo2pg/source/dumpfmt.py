"""The mongodump directory format: `<out>/<db>/<coll>.bson[.gz]` + `<coll>.metadata.json[.gz]`.

A .bson file is BSON documents concatenated; `--gzip` compresses both files.
Reading streams document by document; a reader can resume at a document ordinal
(dump files are immutable, so an ordinal is a stable position).
"""

from __future__ import annotations

import gzip
import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import bson
from bson import json_util

from ..errors import ConfigError
from ..files import PRIVATE_DIR, open_private
from .codec import CODEC, EXTJSON, RAW_TYPES

_LEN = struct.Struct("<i")
DIR_MODE = PRIVATE_DIR


@dataclass(frozen=True)
class DumpCollection:
    name: str
    bson_path: Path
    metadata_path: Path | None
    gzipped: bool


def resolve_db_dir(dump: str | Path, db: str = "nextcrm") -> Path:
    """Accept the folder `mongodump --out` wrote (with <db>/ inside) or the <db> folder itself."""
    root = Path(dump)
    if not root.is_dir():
        raise ConfigError(f"dump folder {root} does not exist (give the folder mongodump --out wrote)")
    if (root / db).is_dir():
        return root / db
    if any(p.name.endswith((".bson", ".bson.gz")) for p in root.iterdir()):
        return root
    raise ConfigError(f"dump folder {root} has no database folder {db!r} and no .bson files (check --dump and --db)")


def list_collections(db_dir: Path) -> dict[str, DumpCollection]:
    out: dict[str, DumpCollection] = {}
    for p in sorted(db_dir.iterdir()):
        for suffix, gz in ((".bson.gz", True), (".bson", False)):
            if p.name.endswith(suffix):
                name = p.name[: -len(suffix)]
                meta = db_dir / (name + (".metadata.json.gz" if gz else ".metadata.json"))
                out[name] = DumpCollection(name, p, meta if meta.exists() else None, gz)
    return out


def _open(path: Path, gz: bool) -> BinaryIO:
    return gzip.open(path, "rb") if gz else open(path, "rb", buffering=1 << 20)


def skip_documents(f: BinaryIO, count: int) -> int:
    """Advance past `count` documents by their length prefixes (no decoding). Returns how many were skipped;
    in a plain file, a prefix no document can have (under 5 bytes) stops the skip there, for the read to
    name."""
    skipped = 0
    if isinstance(f, gzip.GzipFile):
        while skipped < count:
            head = f.read(4)
            if len(head) < 4:
                break
            (size,) = _LEN.unpack(head)
            f.read(size - 4)
            skipped += 1
        return skipped
    # A plain file: the prefixes read from 1 MB blocks, a block read only where a document starts (a seek
    # and a read per document cost 2.5x as much: a second to count 1.25M documents). Not a mapping of the
    # file: its pages would count as this process's memory, the whole file's worth.
    unpack, fd, pos = _LEN.unpack_from, f.fileno(), f.tell()
    size = os.fstat(fd).st_size
    while skipped < count and pos + 4 <= size:
        block, start = os.pread(fd, 1 << 20, pos), pos
        end = start + len(block)
        while skipped < count and pos + 4 <= end:
            length = unpack(block, pos - start)[0]
            if length < 5:
                f.seek(pos)
                return skipped
            pos += length
            skipped += 1
    f.seek(pos)
    return skipped


def iter_documents(coll: DumpCollection, start: int = 0) -> Iterator[dict[str, Any]]:
    """Yield the collection's documents in file order, from ordinal `start`."""
    return (doc for doc, _ in iter_sized(coll, start))


def iter_sized(coll: DumpCollection, start: int = 0) -> Iterator[tuple[dict[str, Any], int]]:
    """Yield (document, its BSON size) in file order, from ordinal `start`: the size bounds batches by bytes."""
    decode = bson.decode
    for raw, size in iter_raw_sized(coll, start):
        yield decode(raw, CODEC), size


def iter_raw_sized(coll: DumpCollection, start: int = 0) -> Iterator[tuple[bytes, int]]:
    """Yield (raw BSON document, its size) in file order, from ordinal `start`."""
    with _open(coll.bson_path, coll.gzipped) as f:
        if start:
            skip_documents(f, start)
        while True:
            head = f.read(4)
            if len(head) < 4:
                return
            (size,) = _LEN.unpack(head)
            yield head + f.read(size - 4), size


def iter_raw(coll: DumpCollection) -> Iterator[bytes]:
    """Yield each document's raw BSON bytes (for checksums and byte-level comparisons)."""
    return (raw for raw, _ in iter_raw_sized(coll))


def count_documents(coll: DumpCollection) -> int:
    """Documents in the collection's file, by their length prefixes (no decoding)."""
    with _open(coll.bson_path, coll.gzipped) as f:
        return skip_documents(f, 1 << 62)


def read_metadata(coll: DumpCollection) -> dict[str, Any]:
    if coll.metadata_path is None:
        return {}
    opener = gzip.open if coll.metadata_path.name.endswith(".gz") else open
    with opener(coll.metadata_path, "rt", encoding="utf-8") as f:
        return json_util.loads(f.read())


def metadata_document(name: str, indexes: list[dict[str, Any]] | None = None, options: dict | None = None) -> str:
    """The <coll>.metadata.json text, in the shape mongodump writes (canonical extended JSON)."""
    idx = indexes or [{"v": 2, "key": {"_id": 1}, "name": "_id_"}]
    doc = {"indexes": idx, "uuid": "", "collectionName": name, "type": "collection", "options": options or {}}
    return json_util.dumps(doc, json_options=EXTJSON)


class DumpWriter:
    """Writes one database folder of a mongodump-format dump, one collection at a time."""

    def __init__(self, out: str | Path, db: str, gzip_files: bool = False):
        self.db_dir = Path(out) / db
        self.gzip = gzip_files
        self.db_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.db_dir, DIR_MODE)
        os.chmod(self.db_dir.parent, DIR_MODE)

    def _write_file(self, filename: str, chunks: Iterable[bytes]) -> int:
        path = self.db_dir / filename
        n = 0
        with open_private(path, "wb", buffering=1 << 20) as raw:
            # mtime=0 and no name keep gzip output byte-identical from run to run.
            with (gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0, filename="") if self.gzip
                  else _NoClose(raw)) as f:
                for chunk in chunks:
                    f.write(chunk)
                    n += 1
        return n

    def write_collection(self, name: str, docs: Iterable[dict[str, Any] | bytes | memoryview],
                         indexes: list[dict[str, Any]] | None = None, options: dict | None = None) -> int:
        suffix = ".gz" if self.gzip else ""
        # Raw documents come as bytes, or (pymongo, for some replies) as a memoryview of the reply.
        n = self._write_file(f"{name}.bson{suffix}",
                             (doc if isinstance(doc, RAW_TYPES) else bson.encode(doc) for doc in docs))
        self._write_file(f"{name}.metadata.json{suffix}", [metadata_document(name, indexes, options).encode()])
        return n


class _NoClose:
    """Context wrapper for a plain file whose closing the outer `with` already handles."""

    def __init__(self, f: BinaryIO):
        self.write = f.write

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None
