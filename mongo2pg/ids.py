"""Deterministic, reversible ObjectId <-> UUID mapping.

The 12 ObjectId bytes are embedded in a UUIDv8 (RFC 9562):

    oid  = t0 t1 t2 t3 r0 r1 | r2 r3 r4 c0 c1 c2
    uuid = t0t1t2t3-r0r1-8000-8000-r2r3r4c0c1c2

Bytes 6..9 hold the version (8) and the RFC variant; the rest is the ObjectId, in
order. So the UUID's text shows the ObjectId (first 12 and last 12 hex digits), a
reference converts without a lookup, a resumed run produces the same ids, and the
UUID order in PostgreSQL (bytewise) equals the ObjectId order in MongoDB.
"""

from __future__ import annotations

import uuid

from bson import ObjectId

# The rule's one statement. Its copies, each saying so, are the C builders' (transform/_fastrow.c,
# validation/_fastdigest.c: uuid_hex, digest_uuid) and validation's SQL (validation/database.py: _OID_PAIR,
# built from MIDDLE_HEX); tests/test_ids.py holds them equal to these functions.
MIDDLE_HEX = "80008000"
_MIDDLE = bytes.fromhex(MIDDLE_HEX)


class IdFormatError(ValueError):
    """The value is neither an ObjectId nor a UUID made by this scheme."""


def uuid_bytes_from_oid_bytes(oid: bytes) -> bytes:
    return oid[:6] + _MIDDLE + oid[6:]


def uuid_hex_from_oid_hex(h: str) -> str:
    """An ObjectId's 24 hex digits -> the UUID's 32, unhyphenated: what COPY and the validation digest use
    (PostgreSQL reads it as a UUID; cheaper to build)."""
    return h[:12] + MIDDLE_HEX + h[12:]


def oid_hex_from_uuid_hex(u: str) -> str:
    """The inverse of uuid_hex_from_oid_hex (the UUID's middle not checked: the caller made it)."""
    return u[:12] + u[20:]


def uuid_text_from_oid_hex(h: str) -> str:
    return f"{h[0:8]}-{h[8:12]}-{MIDDLE_HEX[:4]}-{MIDDLE_HEX[4:]}-{h[12:24]}"


def uuid_text(oid: ObjectId) -> str:
    """ObjectId -> UUID text, for the hot paths that hold an ObjectId already."""
    return uuid_text_from_oid_hex(oid.binary.hex())


def uuid_hex(oid: ObjectId) -> str:
    """ObjectId -> the UUID's 32 hex digits (uuid_hex_from_oid_hex)."""
    return uuid_hex_from_oid_hex(oid.binary.hex())


def uuid_from_objectid(oid: ObjectId | str | bytes) -> str:
    """ObjectId (or its 24-hex text, or its 12 bytes) -> UUID text."""
    if isinstance(oid, ObjectId):
        return uuid_text(oid)
    elif isinstance(oid, bytes) and len(oid) == 12:
        raw = oid
    elif isinstance(oid, str) and ObjectId.is_valid(oid):
        raw = bytes.fromhex(oid)
    else:
        raise IdFormatError(f"not an ObjectId: {oid!r}")
    return uuid_text_from_oid_hex(raw.hex())


def objectid_from_uuid(value: uuid.UUID | str) -> ObjectId:
    """UUID made by uuid_from_objectid -> the ObjectId it embeds."""
    try:
        raw = (value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))).bytes
    except ValueError as exc:
        raise IdFormatError(f"not a UUID: {value!r}") from exc
    if raw[6:10] != _MIDDLE:
        raise IdFormatError(f"UUID {value} was not made from an ObjectId by mongo2pg (bytes 6-9 are not {MIDDLE_HEX})")
    return ObjectId(raw[:6] + raw[10:])


def row_id(_id: ObjectId | str) -> str:
    """A loaded document's row id as PostgreSQL prints it: an ObjectId's UUID, a string id as it is (a table
    whose mapping keeps string ids, `text_id`). Documents of the other kind are rejects and have none."""
    return _id if type(_id) is str else uuid_text(_id)


def document_id(row: str, text_id: bool) -> ObjectId | str:
    """The inverse of row_id, for a table of the kind given."""
    return row if text_id else objectid_from_uuid(row)


def bad_id_reason(_id: object, text_id: bool) -> str | None:
    """Why this _id cannot be a row's id in a table of the kind given; None when it can."""
    if text_id:
        if type(_id) is not str:
            return f"_id is {type(_id).__name__}, not a string: this table keeps string ids"
        if not _id or "\x00" in _id:
            return "_id is an empty string or holds a NUL character: PostgreSQL text cannot hold it"
        return None
    if type(_id) is not ObjectId:
        return f"_id is {type(_id).__name__}, not an ObjectId: no UUID can be derived"
    return None


def convert_any(text: str) -> tuple[str, str]:
    """For `mongo2pg id`: returns (kind of the input, the other side's id)."""
    text = text.strip()
    if ObjectId.is_valid(text) and len(text) == 24:
        return "objectid", uuid_from_objectid(text)
    return "uuid", str(objectid_from_uuid(text))
