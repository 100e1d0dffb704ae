"""The role's filter: `{{ password | postgresql_scram_verifier(user) }}`, the SCRAM-SHA-256 verifier
PostgreSQL stores for a password. The role creates its users with the verifier, so the password itself
is never sent to the server: with the runbook's `log_statement = 'ddl'`, the server's log and
pg_stat_statements would otherwise record `CREATE ROLE ... PASSWORD '<the password>'`."""

from __future__ import annotations

import base64
import hashlib
import hmac

SCRAM_ITERATIONS = 4096  # PostgreSQL's default (scram_iterations)


def postgresql_scram_verifier(password: str, user: str, iterations: int = SCRAM_ITERATIONS) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL would store for `password` (RFC 5802/7677), computed here so
    that the server is only ever sent the verifier: `log_statement = 'ddl'` and pg_stat_statements then
    record no password. The salt is derived from the user and password, so the verifier is the same on
    every run (an unchanged password changes nothing) and differs for every user."""
    salt = hmac.new(password.encode(), b"mongo2pg-salt:" + user.encode(), hashlib.sha256).digest()[:16]
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


class FilterModule:
    def filters(self):
        return {"postgresql_scram_verifier": postgresql_scram_verifier}
