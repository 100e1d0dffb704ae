"""`sample-data`: NextCRM-shaped data for the lab, tests and benchmarks."""

from __future__ import annotations

import sys
import time

from ..errors import ConfigError


def cmd_sample_data(args) -> int:
    from ..fixtures import write as sample_data

    if bool(args.out_dump) == bool(args.mongo_uri):
        raise ConfigError("give exactly one output: --out-dump DIR or --mongo-uri URI")
    started = time.monotonic()

    def progress(coll: str, n: int) -> None:
        print(f"  {coll:<32} {n:>9,} documents", file=sys.stderr, flush=True)

    if args.out_dump:
        manifest = sample_data.write_dump(args.out_dump, db=args.db, seed=args.seed, scale=args.scale,
                                          dirty_rate=args.dirty_rate, gzip_files=args.gzip, progress=progress,
                                          profile=args.profile)
        where = f"{args.out_dump}/{args.db} (manifest: {args.out_dump}/sample-data-manifest.json)"
    else:
        from ..connect import mongo_client

        client = mongo_client(args.mongo_uri)
        manifest = sample_data.write_live(client, db=args.db, seed=args.seed, scale=args.scale,
                                          dirty_rate=args.dirty_rate, progress=progress, manifest_path=args.manifest,
                                          profile=args.profile)
        from ..redact import redact_uri

        where = f"{redact_uri(args.mongo_uri)} db={args.db}"
    m = manifest.to_json()
    print(f"sample-data: {m['total']:,} documents in {len(m['counts'])} collections -> {where} "
          f"({time.monotonic() - started:.1f}s; {m['dirty_documents']:,} dirty)")
    return 0
