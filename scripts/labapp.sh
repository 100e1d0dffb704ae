#!/usr/bin/env bash
# The lab's stand-in NextCRM app (a LAB FIXTURE): start|stop|status. Its env file (.lab/app/app.env,
# 0600) holds DATABASE_URL, as the real app's .env does; the cutover role switches it. On mongodb://
# it is lab/nextcrm_standin.py (pymongo); on postgresql:// it is lab/prisma_app/server.js on Prisma
# ORM 7, its client generated from `mongo2pg schema prisma` (again whenever that schema changes).
# Maintenance mode = the flag file .lab/app/maintenance exists.
set -euo pipefail
cd "$(dirname "$0")/.."
APP=$PWD/.lab/app
# Below the ephemeral port range (32768+), so no outgoing connection can hold it.
PORT=${LAB_APP_PORT:-18080}
PY=$PWD/.venv/bin/python

running() { [ -f "$APP/app.pid" ] && kill -0 "$(cat "$APP/app.pid")" 2>/dev/null; }

# The Prisma client for the lab's mapping, in $APP/prisma/client. Offline, the CLI needs
# PRISMA_SCHEMA_ENGINE_BINARY to name an existing file; generate itself uses no engine.
prisma_client() {
  mkdir -p "$APP/prisma"
  "$PY" -m mongo2pg schema prisma --mapping "${LAB_MAPPING:-nextcrm}" --out "$APP/prisma/schema.new" >/dev/null
  sed -i 's|provider = "prisma-client-js"|provider = "prisma-client-js"\n  output   = "./client"|' "$APP/prisma/schema.new"
  if [ -f "$APP/prisma/client/index.js" ] && cmp -s "$APP/prisma/schema.new" "$APP/prisma/schema.prisma"; then
    rm -f "$APP/prisma/schema.new"; return 0
  fi
  mv "$APP/prisma/schema.new" "$APP/prisma/schema.prisma"
  PRISMA_SCHEMA_ENGINE_BINARY="$PY" CHECKPOINT_DISABLE=1 node_modules/.bin/prisma generate \
    --schema "$APP/prisma/schema.prisma" >> "$APP/app.log" 2>&1 \
    || { echo "labapp: prisma generate failed; see $APP/app.log" >&2; tail -5 "$APP/app.log" >&2; exit 1; }
}

case "${1:-}" in
  start)
    if running; then echo "labapp: already running (pid $(cat "$APP/app.pid"))"; exit 0; fi
    [ -f "$APP/app.env" ] || { echo "labapp: $APP/app.env missing (make lab-up writes it)" >&2; exit 2; }
    if grep -q '^DATABASE_URL=.\?postgres' "$APP/app.env"; then
      prisma_client
      setsid node lab/prisma_app/server.js --client "$APP/prisma/client" --env-file "$APP/app.env" --port "$PORT" \
        --maintenance-flag "$APP/maintenance" >> "$APP/app.log" 2>&1 < /dev/null &
    else
      setsid "$PY" lab/nextcrm_standin.py --env-file "$APP/app.env" --port "$PORT" \
        --maintenance-flag "$APP/maintenance" >> "$APP/app.log" 2>&1 < /dev/null &
    fi
    echo $! > "$APP/app.pid"
    for _ in $(seq 100); do
      (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && { echo "labapp: started on 127.0.0.1:$PORT (pid $(cat "$APP/app.pid"))"; exit 0; }
      running || break
      sleep 0.1
    done
    echo "labapp: did not start; see $APP/app.log" >&2; tail -5 "$APP/app.log" >&2; exit 1 ;;
  stop)
    if running; then
      pid=$(cat "$APP/app.pid"); kill "$pid"
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      echo "labapp: stopped (pid $pid)"
    fi
    rm -f "$APP/app.pid" ;;
  status)
    if running; then echo "labapp: running (pid $(cat "$APP/app.pid"))"; else echo "labapp: stopped"; exit 3; fi ;;
  *) echo "usage: scripts/labapp.sh start|stop|status" >&2; exit 2 ;;
esac
