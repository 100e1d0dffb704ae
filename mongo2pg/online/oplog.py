"""Whether a source can serve an online migration: change streams need a replica set (or a sharded cluster's
mongos), and the oplog must reach back further than the bulk takes, or the streams opened before the bulk
cannot resume after it (DMS asks for 24 hours of oplog, Fivetran for 7 days). The window is the time between
the oplog's first and last entries (`local.oplog.rs`; reading it needs clusterMonitor, or Atlas's
`readAnyDatabase`/oplog access)."""

from __future__ import annotations

from typing import Any

import pymongo.errors


def source_readiness(client, bulk_seconds: float | None, min_hours: float) -> dict[str, Any]:
    """{"replica_set", "oplog_hours", "needed_hours", "nogo": [reasons]}: needed = max(min_hours, 1.5 x the
    estimated bulk) when an estimate exists."""
    needed = max(min_hours, 1.5 * bulk_seconds / 3600 if bulk_seconds else 0.0)
    out: dict[str, Any] = {"replica_set": None, "oplog_hours": None, "needed_hours": round(needed, 2), "nogo": []}
    hello = client.admin.command("hello")
    if hello.get("msg") == "isdbgrid":
        out["replica_set"] = "mongos (sharded): check each shard's oplog window"
        return out
    out["replica_set"] = hello.get("setName")
    if not out["replica_set"]:
        out["nogo"].append("the source is not a replica set: MongoDB serves change streams only on a replica set "
                           "(or a sharded cluster); convert it (a one-member replica set will do) before going online")
        return out
    oplog = client["local"]["oplog.rs"]
    try:
        first = next(iter(oplog.find({}, {"ts": 1}).sort("$natural", 1).limit(1)), None)
        last = next(iter(oplog.find({}, {"ts": 1}).sort("$natural", -1).limit(1)), None)
    except pymongo.errors.OperationFailure as exc:
        out["nogo"].append(f"the oplog cannot be read ({exc.code}: the user needs clusterMonitor or read on local): "
                           "its window is unknown")
        return out
    if first is None or last is None:
        out["nogo"].append("the oplog is empty: its window is unknown")
        return out
    hours = (last["ts"].time - first["ts"].time) / 3600
    out["oplog_hours"] = round(hours, 2)
    if hours < needed:
        out["nogo"].append(f"the oplog holds {hours:.1f} h, less than the {needed:.1f} h needed (the estimated bulk x 1.5, "
                           f"at least {min_hours:g} h): resize it (replSetResizeOplog; Atlas: the oplog window setting)")
    return out
