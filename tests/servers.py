"""Real servers for tests and benchmarks: a throwaway PostgreSQL cluster and an nx-27017 MongoDB.

PostgreSQL refuses to run as root, so as root the cluster is run as the `postgres`
OS user (created by Debian's postgresql package, which `make setup` installs).
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg2

VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql: run `make setup`")
    return Path(found[-1]).parent


class PgServer:
    """initdb + pg_ctl on a free port; trust auth for the superuser over the socket, scram over TCP."""

    def __init__(self, password: str = "s3cret-Pg-pass", settings: dict[str, str] | None = None,
                 parent: Path | None = None):
        self.bindir = pg_bindir()
        self.port = free_port()
        self.base = Path(tempfile.mkdtemp(prefix="m2p-pg-", dir=parent))
        self.datadir = self.base / "data"
        self.password = password
        self.settings = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",
                         "max_wal_size": "4GB", "shared_buffers": "256MB", "maintenance_work_mem": "256MB",
                         **(settings or {})}
        self.as_root = os.geteuid() == 0

    def _run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        full = (["runuser", "-u", "postgres", "--"] if self.as_root else []) + list(cmd)
        # Not the sanitizer runtime make fuzz preloads into the tests (PostgreSQL hangs under it).
        env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "ASAN_OPTIONS")}
        return subprocess.run(full, check=check, capture_output=True, text=True, env=env)

    def start(self) -> PgServer:
        if self.as_root:
            shutil.chown(self.base, "postgres", "postgres")
        pwfile = self.base / "pw"
        pwfile.write_text(self.password)
        if self.as_root:
            shutil.chown(pwfile, "postgres", "postgres")
        self._run(str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", "postgres", "-A", "scram-sha-256",
                  "--pwfile", str(pwfile), "-E", "UTF8", "--locale=C")
        with open(self.datadir / "postgresql.auto.conf", "a") as f:
            for k, v in self.settings.items():
                f.write(f"{k} = '{v}'\n")
        self.start_again()
        return self

    def start_again(self) -> None:
        """Start the stopped (or crashed) server on its port, waiting until it accepts connections."""
        self.pg_ctl("start", "-w", "-o", f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1")

    def crash(self) -> None:
        """Stopped as a crash or a provider's failover does it: connections cut, no checkpoint."""
        self.pg_ctl("stop", "-m", "immediate")

    def pg_ctl(self, *args: str) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-l", str(self.base / "log"), *args)

    def restart(self, mode: str = "fast") -> None:
        self.pg_ctl("restart", "-w", "-m", mode, "-o",
                    f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1")

    def stop(self) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "stop", "-m", "immediate", check=False)
        shutil.rmtree(self.base, ignore_errors=True)

    def uri(self, db: str = "postgres", user: str = "postgres", password: str | None = None) -> str:
        return f"postgresql://{user}:{password or self.password}@127.0.0.1:{self.port}/{db}"

    def create_db(self, name: str, template: str | None = None) -> str:
        """A new, empty database (or a copy of `template`); an old one of that name is dropped first."""
        conn = psycopg2.connect(self.uri())
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            cur.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        conn.close()
        return self.uri(name)

    def drop_db(self, name: str) -> None:
        conn = psycopg2.connect(self.uri())
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


class MongoServer:
    """The nx-27017 MongoDB wire-protocol server on a free port, data in a temp folder."""

    def __init__(self):
        self.port = free_port()
        self.base = Path(tempfile.mkdtemp(prefix="m2p-nx-"))
        self.proc: subprocess.Popen | None = None

    def start(self) -> MongoServer:
        exe = VENV_BIN / "nx-27017"
        self.proc = subprocess.Popen([str(exe), "--data-dir", str(self.base / "data"), "-p", str(self.port),
                                      "--host", "127.0.0.1", "--log-file", str(self.base / "log"),
                                      "--pid-file", str(self.base / "pid")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        if not _listening(self.port):
            raise RuntimeError("nx-27017 did not start")
        return self

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    def kill(self) -> None:
        """As a crash: the process killed (-9), its data kept; start() brings it back on the same port."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        shutil.rmtree(self.base, ignore_errors=True)


class PgBouncer:
    """Debian's pgbouncer (`make setup` installs it) on a free port in front of a PgServer, in the pool mode
    given; clients log in with the server's password (SCRAM), as through a provider's pooled endpoint."""

    def __init__(self, server: PgServer, mode: str = "transaction"):
        self.server, self.mode = server, mode
        self.port = free_port()
        self.base = Path(tempfile.mkdtemp(prefix="m2p-bouncer-"))
        self.proc: subprocess.Popen | None = None

    def start(self) -> PgBouncer:
        exe = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        (self.base / "userlist.txt").write_text(f'"postgres" "{self.server.password}"\n')
        (self.base / "pgbouncer.ini").write_text(
            f"[databases]\n* = host=127.0.0.1 port={self.server.port}\n\n[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = scram-sha-256\nauth_file = {self.base / 'userlist.txt'}\npool_mode = {self.mode}\n"
            f"default_pool_size = 20\nlogfile = {self.base / 'log'}\n")
        cmd = [exe, str(self.base / "pgbouncer.ini")]
        if os.geteuid() == 0:  # pgbouncer will not run as root
            for f in self.base.iterdir():
                shutil.chown(f, "postgres", "postgres")
            shutil.chown(self.base, "postgres", "postgres")
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        if not _listening(self.port):
            log = self.base / "log"
            raise RuntimeError("pgbouncer did not start" + (": " + log.read_text(errors="replace")[-500:]
                                                            if log.exists() else ""))
        return self

    def uri(self, db: str) -> str:
        return f"postgresql://postgres:{self.server.password}@127.0.0.1:{self.port}/{db}"

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(10)
        shutil.rmtree(self.base, ignore_errors=True)


def _listening(port: int, seconds: float = 20) -> bool:
    """Whether something accepts connections on 127.0.0.1:port within `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


def table_digests(pg_uri: str, mapping_name: str = "nextcrm") -> dict[str, tuple]:
    """Each table's and junction's rows, ordered, as (count, md5): equal digests, identical tables."""
    import psycopg2
    from psycopg2 import sql

    from mongo2pg.mapping import load_mapping

    mapping = load_mapping(mapping_name)
    conn = psycopg2.connect(pg_uri)
    out = {}
    with conn.cursor() as cur:
        for name in [*mapping.tables, *mapping.junctions]:
            cur.execute(sql.SQL("SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) "
                                "FROM {} t").format(sql.Identifier(name)))
            out[name] = cur.fetchone()
    conn.close()
    return out
