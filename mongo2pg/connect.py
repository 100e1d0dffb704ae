"""Connections to both sides, with one clear error line on failure and no secret in it."""

from __future__ import annotations

import psycopg2
import pymongo
from pymongo.errors import PyMongoError

from .errors import ConnectionFailed
from .redact import password_of, redact_text, redact_uri

PG_TRANSIENT = (psycopg2.OperationalError, psycopg2.InterfaceError)


def pg_connect(uri: str, application_name: str = "mongo2pg"):
    """A psycopg2 connection (autocommit off). Raises ConnectionFailed with a redacted, actionable message."""
    try:
        conn = psycopg2.connect(uri, application_name=application_name, connect_timeout=10)
    except psycopg2.Error as exc:
        msg = redact_text(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
                          (password_of(uri),))
        hint = "check host, port, user, password and database in --pg-uri"
        if "does not exist" in msg:
            hint = "create the database first (playbooks/10_prepare.yml does) or fix the name in --pg-uri"
        elif "password authentication failed" in msg or "no pg_hba.conf entry" in msg:
            hint = "check the user and password, and that pg_hba.conf allows this client"
        elif "Connection refused" in msg or "could not connect" in msg or "timeout" in msg:
            hint = "is PostgreSQL running and listening there? (make lab-up starts the lab)"
        raise ConnectionFailed(f"PostgreSQL {redact_uri(uri)}: {msg} -- {hint}") from None
    return conn


def mongo_client(uri: str, timeout_ms: int = 10_000) -> pymongo.MongoClient:
    """A pymongo client that has answered a ping. Raises ConnectionFailed with a redacted message."""
    try:
        client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms,
                                     tz_aware=True)
        client.admin.command("ping")
    except (PyMongoError, ValueError) as exc:
        msg = redact_text(str(exc).split(", Timeout:")[0][:300], (password_of(uri),))
        raise ConnectionFailed(f"MongoDB {redact_uri(uri)}: {msg} -- check host, port and credentials in --mongo-uri "
                               "(make lab-up starts the lab's server)") from None
    return client
