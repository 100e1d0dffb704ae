"""A managed PostgreSQL (RDS/Aurora, Cloud SQL, Azure, Neon, Supabase) checked and prepared over SQL only, with
the provider's admin login: no host to log into, so phase 10 verifies what it cannot provision.

The runbook's settings are compared with what the server shows, each difference named with where that
provider changes it; only durability off is a NO-GO (acknowledged writes lost in a crash). The admin login is
a CREATEROLE/CREATEDB role without superuser, as the providers give."""

from __future__ import annotations

from typing import Any

import psycopg2

from ..connect import pg_connect
from ..errors import ConfigError

# Where each provider lets its customer change a server setting.
SETTING_HINTS = {
    "rds": "in the instance's (or Aurora cluster's) custom DB parameter group; static ones apply at the next reboot",
    "aurora": "in the Aurora cluster's custom DB cluster parameter group; static ones apply at the next reboot",
    "cloudsql": "as a Cloud SQL database flag (gcloud sql instances patch INSTANCE --database-flags=...)",
    "azure": "as an Azure server parameter (az postgres flexible-server parameter set)",
    "neon": "Neon manages server settings itself; session ones per role or database (ALTER ROLE/DATABASE ... SET)",
    "supabase": "with the Supabase CLI (supabase postgres-config update) or ALTER ROLE/DATABASE ... SET",
}
GENERIC_HINT = "in the provider's console (its parameter or flag settings)"
# What must hold for a write the server acknowledged to survive its crash.
DURABILITY = {"fsync": ("on",), "full_page_writes": ("on",),
              "synchronous_commit": ("on", "remote_apply", "remote_write", "local")}
WAL_COMPRESSIONS = ("on", "pglz", "lz4", "zstd")


def setting_hint(provider: str) -> str:
    return SETTING_HINTS.get(provider.lower(), GENERIC_HINT)


def _same(name: str, have: str, raw: str, want: str) -> bool:
    want = str(want).strip().strip("'").lower()
    have_l, raw_l = have.lower(), raw.lower()
    if name == "wal_compression" and want == "on":
        return have_l in WAL_COMPRESSIONS
    if name == "shared_preload_libraries":
        return set(filter(None, (x.strip() for x in want.split(",")))) <= {x.strip() for x in have_l.split(",")}
    return want in (have_l, raw_l)


def _settings(cur, names: list[str]) -> dict[str, tuple[str, str]]:
    cur.execute("SELECT name, current_setting(name), setting FROM pg_settings WHERE name = ANY(%s)", (names,))
    return {name: (shown, raw) for name, shown, raw in cur.fetchall()}


def _tls_required(uri: str) -> bool:
    """Whether the server refuses this login without TLS (a provider's rule, or pg_hba's hostssl)."""
    try:
        psycopg2.connect(uri, sslmode="disable", connect_timeout=10).close()
    except psycopg2.OperationalError:
        return True
    return False


def check_server(admin_uri: str, *, provider: str = "", min_major: int = 16, extensions: list[str] = (),
                 expected: dict[str, Any] | None = None) -> dict[str, Any]:
    """The server against the runbook: version, extensions offered, settings, durability, the admin login.
    `nogo` lists what stops the run; `differences` what the operator may change (with the provider's hint)."""
    conn = pg_connect(admin_uri, "mongo2pg managed check")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT current_setting('server_version_num')::int, current_setting('server_version')")
            version_num, version = cur.fetchone()
            cur.execute("SELECT name FROM pg_available_extensions")
            available = {r[0] for r in cur.fetchall()}
            cur.execute("SELECT rolname, rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = current_user")
            user, superuser, createrole, createdb = cur.fetchone()
            cur.execute("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            ssl, ssl_version = cur.fetchone()
            wanted = dict(expected or {})
            shown = _settings(cur, sorted(set(wanted) | set(DURABILITY)))
    finally:
        conn.close()
    hint = setting_hint(provider)
    nogo: list[str] = []
    if version_num // 10000 < min_major:
        nogo.append(f"PostgreSQL {version} is older than {min_major}: the runbook needs {min_major}+ "
                    "(the provider's major version upgrade)")
    for ext in extensions:
        if ext not in available:
            nogo.append(f"extension {ext} is not offered by this server (pg_available_extensions): "
                        "choose a version or plan of the provider that has it")
    for name, ok in DURABILITY.items():
        have = shown.get(name, ("", ""))[0]
        if have.lower() not in ok:
            nogo.append(f"{name} is {have}: acknowledged writes can be lost in a crash; set it to on {hint}")
    if not (createrole and createdb) and not superuser:
        nogo.append(f"the admin login {user} lacks {' and '.join(x for x, y in (('CREATEROLE', createrole), ('CREATEDB', createdb)) if not y)}:"
                    " use the provider's admin (master) user, which creates the database and its roles")
    differences = [{"name": name, "have": shown[name][0], "want": str(want), "hint": hint}
                   for name, want in sorted(wanted.items())
                   if name in shown and not _same(name, *shown[name], want)]
    unknown = sorted(set(wanted) - set(shown))
    return {"version": version, "major": version_num // 10000, "provider": provider or "unnamed",
            "admin": {"user": user, "superuser": superuser, "createrole": createrole, "createdb": createdb},
            "tls": {"in_use": bool(ssl), "version": ssl_version, "required": _tls_required(admin_uri)},
            "extensions_offered": sorted(set(extensions) & available),
            "durability": {name: shown.get(name, ("", ""))[0] for name in DURABILITY},
            "differences": differences, "unknown_settings": unknown, "nogo": nogo}


def grant_admin_membership(admin_uri: str, roles: list[str]) -> list[str]:
    """PostgreSQL 16+ gives a CREATEROLE login only ADMIN on the roles it creates: to make one of them a
    database's owner, or grant on what it owns, the admin needs to act as it (SET, INHERIT). Returns the roles
    granted now (none on a rerun)."""
    conn = pg_connect(admin_uri, "mongo2pg managed grants")
    granted = []
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT current_setting('server_version_num')::int")
            if cur.fetchone()[0] < 160000:
                return []
            for role in roles:
                cur.execute("""SELECT EXISTS (SELECT FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
                                             JOIN pg_roles u ON u.oid = m.member
                                             WHERE g.rolname = %s AND u.rolname = current_user
                                               AND m.set_option AND m.inherit_option)""", (role,))
                if cur.fetchone()[0]:
                    continue
                cur.execute("SELECT quote_ident(%s), quote_ident(current_user)", (role,))
                ident, me = cur.fetchone()
                try:
                    cur.execute(f"GRANT {ident} TO {me} WITH INHERIT TRUE, SET TRUE")
                except psycopg2.Error as exc:
                    raise ConfigError(f"the admin login cannot act as role {role}: {str(exc).strip()} -- grant it "
                                      "to the admin login (the provider's admin user created it?)") from None
                granted.append(role)
        conn.commit()
    finally:
        conn.close()
    return granted


def check_database(uri: str, extensions: list[str]) -> dict[str, Any]:
    """The application database as the migration will use it: the extensions created and pgvector working."""
    conn = pg_connect(uri, "mongo2pg managed check")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT extname FROM pg_extension")
            created = {r[0] for r in cur.fetchall()}
            vector = None
            if "vector" in created:
                cur.execute("SELECT '[1,2]'::vector::text")
                vector = cur.fetchone()[0]
    finally:
        conn.close()
    missing = [e for e in extensions if e not in created]
    return {"extensions": sorted(created), "missing": missing, "vector": vector,
            "ok": not missing and (vector == "[1,2]" or "vector" not in extensions)}
