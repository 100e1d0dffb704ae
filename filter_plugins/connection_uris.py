"""Ansible filters that build every connection string the phases hand to the engine, the app and the
unattended jobs: one place, each part percent-encoded (a vault password holding `@ : / # % ? &` or a
space stays one password), TLS parameters from the inventory.

    {{ {'user': u, 'password': p, 'host': h, 'port': 5432, 'database': d,
        'params': {'sslmode': 'verify-full', 'sslrootcert': '/etc/ssl/pg-ca.pem'}} | postgresql_uri }}
    {{ {'hosts': ['m1:27017', 'm2:27017'], 'user': u, 'password': p,
        'params': {'authSource': 'admin', 'tls': 'true'}} | mongodb_uri }}
"""

from __future__ import annotations

from urllib.parse import quote, urlencode


def _part(value) -> str:
    return quote(str(value), safe="")


def _host(host: str) -> str:
    host = str(host)
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _query(params) -> str:
    params = {k: v for k, v in (params or {}).items() if v not in (None, "")}
    return ("?" + urlencode({k: str(v) for k, v in params.items()}, quote_via=quote)) if params else ""


def _credentials(spec: dict) -> str:
    user = spec.get("user")
    if not user:
        return ""
    password = spec.get("password")
    return _part(user) + (":" + _part(password) if password not in (None, "") else "") + "@"


def postgresql_uri(spec: dict) -> str:
    """postgresql://user:password@host:port/database?params, every part percent-encoded."""
    port = spec.get("port")
    where = _host(spec["host"]) + (f":{port}" if port not in (None, "") else "")
    return f"postgresql://{_credentials(spec)}{where}/{_part(spec.get('database', ''))}{_query(spec.get('params'))}"


def mongodb_uri(spec: dict) -> str:
    """mongodb://user:password@host1,host2/database?params (no credentials when no user is given)."""
    hosts = spec.get("hosts") or [f"{spec['host']}:{spec['port']}" if spec.get("port") else spec["host"]]
    if isinstance(hosts, str):
        hosts = [hosts]
    db = spec.get("database") or ""
    return f"mongodb://{_credentials(spec)}{','.join(hosts)}/{_part(db) if db else ''}{_query(spec.get('params'))}"


class FilterModule:
    def filters(self):
        return {"postgresql_uri": postgresql_uri, "mongodb_uri": mongodb_uri}
