"""Ansible filters that build every connection string the phases hand to the engine, the app and the
unattended jobs: one place, each part percent-encoded (a vault password holding `@ : / # % ? &` or a
space stays one password), TLS parameters from the inventory.

    {{ {'user': u, 'password': p, 'host': h, 'port': 5432, 'database': d,
        'params': {'sslmode': 'verify-full', 'sslrootcert': '/etc/ssl/pg-ca.pem'}} | postgresql_uri }}
    {{ {'hosts': ['m1:27017', 'm2:27017'], 'user': u, 'password': p,
        'params': {'authSource': 'admin', 'tls': 'true'}} | mongodb_uri }}

A PostgreSQL primary and its standbys go in `hosts` (libpq tries them in order; with
`target_session_attrs: read-write` it takes the one that accepts writes, so a promoted standby is found
after a failover). MongoDB Atlas is `srv: true` with its cluster's host name: `mongodb+srv://`, TLS on
unless the params say otherwise.
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
    """postgresql://user:password@host:port[,host:port...]/database?params, every part percent-encoded."""
    port = spec.get("port")
    if spec.get("hosts"):  # each "host:port" (or a bare host, libpq's default port)
        where = ",".join(_host_port(h) for h in ([spec["hosts"]] if isinstance(spec["hosts"], str) else spec["hosts"]))
    else:
        where = _host(spec["host"]) + (f":{port}" if port not in (None, "") else "")
    return f"postgresql://{_credentials(spec)}{where}/{_part(spec.get('database', ''))}{_query(spec.get('params'))}"


def _host_port(entry: str) -> str:
    host, sep, port = str(entry).rpartition(":")
    if not sep or not port.isdigit() or (":" in host and not host.endswith("]")):
        return _host(entry)  # no port, or a bare IPv6 address
    return f"{_host(host)}:{port}"


def mongodb_uri(spec: dict) -> str:
    """mongodb://user:password@host1,host2/database?params (no credentials when no user is given);
    mongodb+srv://user:password@cluster/database?params with `srv: true` (one host name, no port)."""
    hosts = spec.get("hosts") or [f"{spec['host']}:{spec['port']}" if spec.get("port") else spec["host"]]
    if isinstance(hosts, str):
        hosts = [hosts]
    db = spec.get("database") or ""
    params = dict(spec.get("params") or {})
    scheme = "mongodb"
    if spec.get("srv"):
        if len(hosts) != 1 or ":" in hosts[0]:
            raise ValueError("mongodb+srv takes one host name without a port (the cluster's, from its DNS SRV record)")
        scheme = "mongodb+srv"
        params.setdefault("tls", "true")  # Atlas requires TLS; the driver's default for +srv, said explicitly
    return f"{scheme}://{_credentials(spec)}{','.join(hosts)}/{_part(db) if db else ''}{_query(params)}"


class FilterModule:
    def filters(self):
        return {"postgresql_uri": postgresql_uri, "mongodb_uri": mongodb_uri}
