"""The peer: dlt loading a mongodump's collections into PostgreSQL the way its documentation shows
(one resource per collection, its postgres destination, the csv loader, which loads with COPY).
Runs in its own venv (scripts/bench_peers.py makes it); prints one JSON line of figures.

    python dlt_load.py DUMP_DB_DIR POSTGRES_URI [csv|insert_values]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import bson
import dlt
from bson import ObjectId


def plain(value):
    """dlt takes JSON-like values: ObjectIds as their hex (as dlt's MongoDB source converts them)."""
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def documents(path: Path):
    with path.open("rb") as f:
        for doc in bson.decode_file_iter(f):
            yield plain(doc)


def main() -> int:
    db_dir, uri = Path(sys.argv[1]), sys.argv[2]
    file_format = sys.argv[3] if len(sys.argv) > 3 else "csv"
    resources = [dlt.resource(documents(p), name=p.stem, write_disposition="replace", primary_key="_id")
                 for p in sorted(db_dir.glob("*.bson"))]
    pipeline = dlt.pipeline(pipeline_name="bench_peer", destination=dlt.destinations.postgres(credentials=uri),
                            dataset_name="peer", pipelines_dir=str(db_dir.parent / ".dlt-pipelines"))
    started = time.monotonic()
    info = pipeline.run(resources, loader_file_format=file_format)
    wall = time.monotonic() - started
    info.raise_on_failed_jobs()
    print(json.dumps({"seconds": wall, "loader": file_format}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
