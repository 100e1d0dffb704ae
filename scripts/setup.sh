#!/usr/bin/env bash
# One-command, idempotent setup: Debian packages the project needs, .venv/ with the engine and every
# test tool, and node_modules/ (Prisma's parser and CLI, pinned by package-lock.json). Reaches only
# Debian's archive, PyPI and npm.
set -euo pipefail
cd "$(dirname "$0")/.."

# gcc and python3-dev build the engine's C builders (mongo2pg/transform/_fastrow.c, mongo2pg/validation/_fastdigest.c).
APT_PACKAGES=(postgresql postgresql-client pgbouncer debootstrap rsync python3-venv python3-dev gcc ca-certificates iproute2)
# Node.js and npm for Prisma's tools, from Debian when the machine has none.
command -v node >/dev/null && command -v npm >/dev/null || APT_PACKAGES+=(nodejs npm)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  # policy-rc.d keeps the package's own cluster from starting: tests start their own servers.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# node_modules/: exactly the lock's versions; install scripts off (the Prisma CLI's would download a
# schema-engine binary, which nothing here needs).
npm_stamp=node_modules/.setup-stamp
npm_want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$npm_stamp" ] || [ "$(cat "$npm_stamp")" != "$npm_want" ]; then
  echo "setup: installing node_modules (npm ci)"
  npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
  echo "$npm_want" > "$npm_stamp"
fi

PY=${PYTHON:-python3}
stamp=.venv/.setup-stamp
want=$(cat pyproject.toml mongo2pg/_bson.h mongo2pg/transform/_fastrow.c mongo2pg/validation/_fastdigest.c | sha256sum | cut -d' ' -f1)
if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "setup: .venv is up to date"
  exit 0
fi
echo "setup: building .venv"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/python -m pip install -q -e '.[dev]' 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/python -c 'import mongo2pg, pymongo, psycopg2, yaml' || { echo 'setup: the venv is incomplete' >&2; exit 1; }
.venv/bin/python -c 'import mongo2pg.transform._fastrow, mongo2pg.validation._fastdigest' ||
  { echo 'setup: the C builders did not build (gcc, python3-dev?)' >&2; exit 1; }
collections=$(.venv/bin/ansible-galaxy collection list 2>/dev/null)
for c in community.postgresql community.mongodb community.general ansible.posix; do
  grep -q "^$c " <<<"$collections" || { echo "setup: the ansible package did not bring $c" >&2; exit 1; }
done
echo "$want" > "$stamp"
echo "setup: done (.venv/bin/mongo2pg, .venv/bin/ansible-playbook)"
