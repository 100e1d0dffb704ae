from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from servers import MongoServer, PgServer  # noqa: E402

from mongo2pg.fixtures.write import write_dump  # noqa: E402


@pytest.fixture(scope="session")
def pg():
    server = PgServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mongo():
    server = MongoServer().start()
    yield server
    server.stop()


@pytest.fixture
def pg_db(pg, request):
    name = "t_" + request.node.name.lower().replace("[", "_").replace("]", "").replace("-", "_")[:50]
    return pg.create_db(name)


@pytest.fixture(scope="session")
def clean_dump(tmp_path_factory):
    out = tmp_path_factory.mktemp("clean")
    write_dump(out, scale=0.01, seed=7)
    return out


@pytest.fixture(scope="session")
def dirty_dump(tmp_path_factory):
    out = tmp_path_factory.mktemp("dirty")
    write_dump(out, scale=0.01, seed=11, dirty_rate=0.03)
    return out
