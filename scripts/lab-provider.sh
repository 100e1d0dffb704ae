#!/usr/bin/env bash
# The lab's managed PostgreSQL (LAB_PROFILE=managed, inventories/managed): lab-db set up as a provider
# sets up its service, by this script and never by Ansible, so the runbook meets what RDS, Cloud SQL,
# Azure, Neon or Supabase hand a customer:
#   - PostgreSQL 17 + pgvector (cluster "provider") on 127.0.0.1:${LAB_PG_PORT}, TLS only (hostssl), the
#     provider's own settings (Debian's defaults, durability on), pg_stat_statements preloaded;
#   - an admin login for the customer, lab_admin: CREATEROLE, CREATEDB, no superuser, allowed to hand out
#     pg_monitor (as rds_superuser or Cloud SQL's cloudsqlsuperuser);
#   - an extension allow-list: vector and pg_stat_statements marked trusted, so a non-superuser with CREATE
#     on a database may create them (what rds.allowed_extensions or supautils do on the real services);
#   - PgBouncer in transaction mode on 127.0.0.1:${LAB_POOLER_PORT}, TLS on both sides: the app's pooled URL.
#   lab-provider.sh up    idempotent; called by scripts/lab.sh up (the host is mounted, its data on tmpfs)
set -euo pipefail
cd "$(dirname "$0")/.."
umask 022
LAB=$PWD/.lab
ROOTFS=$LAB/rootfs
LAB_PG_PORT=${LAB_PG_PORT:-55432}
LAB_POOLER_PORT=${LAB_POOLER_PORT:-56432}
PG=17
CONF=/etc/postgresql/$PG/provider
in_host() { chroot "$ROOTFS" "$@"; }
as_postgres() { chroot "$ROOTFS" runuser -u postgres -- "$@"; }
log() { echo "lab-provider: $*"; }
secret() { grep "^$1:" "$LAB/lab-secrets.yml" | cut -d'"' -f2; }

install_packages() {
  [ -x "$ROOTFS/usr/lib/postgresql/$PG/bin/postgres" ] && [ -f "$ROOTFS/usr/share/postgresql/$PG/extension/vector.control" ] \
    && [ -x "$ROOTFS/usr/sbin/pgbouncer" ] && return
  log "installing postgresql-$PG, pgvector and pgbouncer in lab-db (the provider's packages)"
  mkdir -p "$ROOTFS/etc/postgresql-common/createcluster.d"
  echo "create_main_cluster = false" > "$ROOTFS/etc/postgresql-common/createcluster.d/40-provider.conf"
  in_host apt-get update -qq
  DEBIAN_FRONTEND=noninteractive in_host apt-get install -y -qq --no-install-recommends \
    "postgresql-$PG" "postgresql-$PG-pgvector" pgbouncer > /dev/null
}

# The allow-list: the provider lets its customers' admin create these two.
allow_extensions() {
  local f
  for f in vector pg_stat_statements; do
    f=$ROOTFS/usr/share/postgresql/$PG/extension/$f.control
    grep -q '^trusted' "$f" || echo "trusted = true  # lab-provider.sh: the provider's allow-list" >> "$f"
  done
}

make_cluster() {
  in_host chown postgres:postgres /var/lib/postgresql  # the data file system, mounted before the user existed
  if [ ! -f "$ROOTFS$CONF/postgresql.conf" ]; then
    in_host pg_createcluster "$PG" provider -p "$LAB_PG_PORT" --locale C.UTF-8 -- --auth-local=peer \
      --auth-host=scram-sha-256 > /dev/null
    log "cluster $PG/provider created"
  fi
  install -d -m 0700 -o "$(in_host id -u postgres)" "$ROOTFS$CONF/tls"
  for f in server.crt server.key; do
    install -m 0600 -o "$(in_host id -u postgres)" "$LAB/tls/$f" "$ROOTFS$CONF/tls/$f"
  done
  cat > "$ROOTFS$CONF/conf.d/50-provider.conf" <<EOF
# The provider's settings (lab-provider.sh): its customers change them through its console only.
listen_addresses = '127.0.0.1'
port = $LAB_PG_PORT
ssl = on
ssl_cert_file = '$CONF/tls/server.crt'
ssl_key_file = '$CONF/tls/server.key'
ssl_min_protocol_version = 'TLSv1.2'
password_encryption = scram-sha-256
shared_preload_libraries = 'pg_stat_statements'
EOF
  cat > "$ROOTFS$CONF/pg_hba.conf" <<EOF
# The provider's network rules: its own superuser on the socket, everyone else over TLS with a password.
local all postgres peer
local all all reject
hostssl all all 127.0.0.1/32 scram-sha-256
host all all 0.0.0.0/0 reject
host all all ::/0 reject
EOF
  in_host chown postgres:postgres "$CONF/conf.d/50-provider.conf" "$CONF/pg_hba.conf"
  chmod 0640 "$ROOTFS$CONF/pg_hba.conf"
  if ! in_host pg_lsclusters -h | awk '$2 == "provider" && $4 ~ /^online/' | grep -q .; then
    in_host pg_ctlcluster "$PG" provider start
    log "PostgreSQL $PG (provider) on 127.0.0.1:$LAB_PG_PORT, TLS only"
  else
    in_host pg_ctlcluster "$PG" provider reload  # settings and rules as written above
  fi
}

# The customer's admin login, as a provider creates it: its password (.lab/lab-secrets.yml) goes to the server
# as a SCRAM verifier only, so no statement statistics or log of the server holds it.
make_admin() {
  local verifier
  verifier=$(LAB_ADMIN_PASSWORD=$(secret lab_admin_password) "$PWD/.venv/bin/python" -c "
import os, sys; sys.path.insert(0, 'roles/postgresql/filter_plugins')
from scram_verifier import postgresql_scram_verifier as v; print(v(os.environ['LAB_ADMIN_PASSWORD'], 'lab_admin'))")
  as_postgres psql -X -q -v ON_ERROR_STOP=1 -p "$LAB_PG_PORT" -d postgres > /dev/null <<EOF
\\set pw '$verifier'
SELECT 'CREATE ROLE lab_admin LOGIN CREATEROLE CREATEDB NOSUPERUSER'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'lab_admin') \\gexec
ALTER ROLE lab_admin PASSWORD :'pw';
SELECT 'GRANT pg_monitor TO lab_admin WITH ADMIN OPTION'
 WHERE NOT pg_has_role('lab_admin', 'pg_monitor', 'MEMBER WITH ADMIN OPTION') \\gexec
EOF
}

start_pooler() {
  local dir=/etc/pgbouncer-provider
  install -d -m 0700 -o "$(in_host id -u postgres)" "$ROOTFS$dir"
  (umask 077
   printf '"%s" "%s"\n' nextcrm "$(secret lab_app_password)" nextcrm_migrator "$(secret lab_pg_password)" \
     > "$ROOTFS$dir/userlist.txt"
   cat > "$ROOTFS$dir/pgbouncer.ini" <<EOF
[databases]
nextcrm = host=127.0.0.1 port=$LAB_PG_PORT dbname=nextcrm

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $LAB_POOLER_PORT
unix_socket_dir =
pool_mode = transaction
auth_type = scram-sha-256
auth_file = $dir/userlist.txt
default_pool_size = 20
client_tls_sslmode = require
client_tls_cert_file = $CONF/tls/server.crt
client_tls_key_file = $CONF/tls/server.key
server_tls_sslmode = verify-full
server_tls_ca_file = $dir/ca.crt
pidfile = $dir/pgbouncer.pid
logfile = $dir/pgbouncer.log
EOF
  )
  install -m 0644 "$LAB/tls/ca.crt" "$ROOTFS$dir/ca.crt"
  chown -R "$(in_host id -u postgres)" "$ROOTFS$dir"
  if [ -f "$ROOTFS$dir/pgbouncer.pid" ] && in_host kill -0 "$(cat "$ROOTFS$dir/pgbouncer.pid")" 2>/dev/null; then
    as_postgres kill -HUP "$(cat "$ROOTFS$dir/pgbouncer.pid")"  # userlist and settings read again
  else
    as_postgres pgbouncer -q -d "$dir/pgbouncer.ini"
  fi
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/"$LAB_POOLER_PORT") 2>/dev/null && break; sleep 0.1; done
  log "PgBouncer (transaction mode, TLS) on 127.0.0.1:$LAB_POOLER_PORT: the app's pooled endpoint"
}

case "${1:-}" in
  up) install_packages; allow_extensions; make_cluster; make_admin; start_pooler ;;
  *) echo "usage: scripts/lab-provider.sh up" >&2; exit 2 ;;
esac
