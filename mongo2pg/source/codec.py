"""The project's BSON codec: how every reader decodes a document, and how a document is written into an
error log (canonical extended JSON)."""

from __future__ import annotations

import json
from typing import Any

import bson
from bson import json_util
from bson.codec_options import CodecOptions, DatetimeConversion

# Naive datetimes holding UTC (BSON dates are UTC; a tz-aware decode costs a third more time
# for the same instant); dates outside Python's range come back as DatetimeMS instead of
# raising; invalid UTF-8 survives as surrogates so it can be rejected by name instead of
# crashing the read.
CODEC = CodecOptions(tz_aware=False, datetime_conversion=DatetimeConversion.DATETIME_AUTO,
                     unicode_decode_error_handler="surrogateescape")
EXTJSON = json_util.JSONOptions(json_mode=json_util.JSONMode.CANONICAL, tz_aware=True)
RAW_TYPES = (bytes, bytearray, memoryview)  # a document already encoded


def as_document(doc: dict[str, Any] | bytes | memoryview) -> dict[str, Any]:
    """A document kept as raw BSON (the C builders' way), decoded as every reader decodes; a decoded one as it is."""
    return doc if type(doc) is dict else bson.decode(doc, CODEC)


def to_extended_json(doc: Any) -> str:
    """Canonical extended JSON of a document, for error logs; never fails."""
    try:
        return json_util.dumps(doc, json_options=EXTJSON, ensure_ascii=True)
    except Exception:  # noqa: BLE001 - a log line must always be written
        return json.dumps(repr(doc))
