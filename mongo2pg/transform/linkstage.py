"""The link stage's rows (migration.state: junction, left_id, right_id, source_collection, source_field) as
tuples of PostgreSQL's binary COPY format: the ids as their 16 bytes and the names as they are, where the
text format had PostgreSQL parse two UUIDs and split five fields of every link (half the stage's COPY).
The transform writes them (the C row builder the same bytes), the load COPYs them.
"""

from __future__ import annotations

import struct

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)  # no flags, no header extension
TRAILER = struct.pack("!h", -1)
ID_SEP = struct.pack("!i", 16)  # the right id's length, between the two ids (and the left's, ending the head)
_LEN = struct.Struct("!i")


def _text(value: str) -> bytes:
    data = value.encode("utf-8")
    return _LEN.pack(len(data)) + data


def row_parts(junction: str, collection: str, field: str) -> tuple[bytes, bytes]:
    """(head, tail): a link's tuple is head + left id + ID_SEP + right id + tail."""
    return struct.pack("!h", 5) + _text(junction) + ID_SEP, _text(collection) + _text(field)


def row(head: bytes, left: bytes, right: bytes, tail: bytes) -> bytes:
    return head + left + ID_SEP + right + tail


def fields(tuple_: bytes) -> list[bytes]:
    """A tuple's five fields, as bytes."""
    out, pos = [], 2
    for _ in range(5):
        (n,) = _LEN.unpack_from(tuple_, pos)
        out.append(tuple_[pos + 4:pos + 4 + n])
        pos += 4 + n
    return out


def ends(tuple_: bytes) -> tuple[bytes, bytes]:
    """A link's (left, right) ids, 16 bytes each."""
    f = fields(tuple_)
    return f[1], f[2]
