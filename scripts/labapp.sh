#!/usr/bin/env bash
# The lab's stand-in NextCRM app (lab/nextcrm_standin.py, a LAB FIXTURE): start|stop|status.
# Its env file (.lab/app/app.env, 0600) holds DATABASE_URL, as the real app's .env does; the
# cutover role switches it. Maintenance mode = the flag file .lab/app/maintenance exists.
set -euo pipefail
cd "$(dirname "$0")/.."
APP=$PWD/.lab/app
# Below the ephemeral port range (32768+), so no outgoing connection can hold it.
PORT=${LAB_APP_PORT:-18080}
PY=$PWD/.venv/bin/python

running() { [ -f "$APP/app.pid" ] && kill -0 "$(cat "$APP/app.pid")" 2>/dev/null; }

case "${1:-}" in
  start)
    if running; then echo "labapp: already running (pid $(cat "$APP/app.pid"))"; exit 0; fi
    [ -f "$APP/app.env" ] || { echo "labapp: $APP/app.env missing (make lab-up writes it)" >&2; exit 2; }
    setsid "$PY" lab/nextcrm_standin.py --env-file "$APP/app.env" --port "$PORT" \
      --maintenance-flag "$APP/maintenance" >> "$APP/app.log" 2>&1 < /dev/null &
    echo $! > "$APP/app.pid"
    for _ in $(seq 50); do
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
