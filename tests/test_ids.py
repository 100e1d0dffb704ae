import subprocess
import sys
import uuid

import pytest
from bson import ObjectId

from mongo2pg.ids import IdFormatError, objectid_from_uuid, uuid_from_objectid, uuid_hex


def test_uuid_is_deterministic_reversible_and_rfc9562_v8():
    oid = ObjectId("65a1b2c3d4e5f60718293a4b")
    u = uuid_from_objectid(oid)
    assert u == "65a1b2c3-d4e5-8000-8000-f60718293a4b"
    assert uuid.UUID(u).version == 8 and uuid.UUID(u).variant == uuid.RFC_4122
    assert uuid_from_objectid(str(oid)) == u == uuid_from_objectid(oid.binary)
    assert objectid_from_uuid(u) == oid
    assert uuid_hex(oid) == u.replace("-", "") and objectid_from_uuid(uuid_hex(oid)) == oid  # COPY's form


def test_uuid_order_equals_objectid_order():
    oids = sorted(ObjectId() for _ in range(200))
    assert sorted(uuid.UUID(uuid_from_objectid(o)).bytes for o in oids) == [uuid.UUID(uuid_from_objectid(o)).bytes
                                                                         for o in oids]


def test_foreign_uuid_is_refused_not_misread():
    with pytest.raises(IdFormatError):
        objectid_from_uuid(str(uuid.uuid4()).replace("-4", "-a", 1))
    with pytest.raises(IdFormatError):
        uuid_from_objectid("not-an-id")


def test_cli_converts_both_ways():
    out = subprocess.run([sys.executable, "-m", "mongo2pg.cli", "id", "65a1b2c3d4e5f60718293a4b"],
                         capture_output=True, text=True, check=True).stdout
    assert "65a1b2c3-d4e5-8000-8000-f60718293a4b" in out
    back = subprocess.run([sys.executable, "-m", "mongo2pg.cli", "id", "65a1b2c3-d4e5-8000-8000-f60718293a4b"],
                          capture_output=True, text=True, check=True).stdout
    assert "65a1b2c3d4e5f60718293a4b" in back
    bad = subprocess.run([sys.executable, "-m", "mongo2pg.cli", "id", "xyz"], capture_output=True, text=True)
    assert bad.returncode == 2 and "error" in bad.stderr
