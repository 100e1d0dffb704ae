#!/usr/bin/env bash
# The scenario's application (a fixture): an HTTP server on 127.0.0.1:$PORT answering /health and
# /backend (the scheme of the DATABASE_URL it was started with, read from its env file, as an app reads
# its .env at start). start|stop, with "already running" when it is, as the role's command method expects.
set -euo pipefail
APP=$1 PORT=$2 ACTION=$3
running() { [ -f "$APP/app.pid" ] && kill -0 "$(cat "$APP/app.pid")" 2>/dev/null; }
case "$ACTION" in
  start)
    if running; then echo "app: already running (pid $(cat "$APP/app.pid"))"; exit 0; fi
    mkdir -p "$APP/www"; echo ok > "$APP/www/health"
    sed -n 's/^DATABASE_URL=\([a-z]*\):.*/\1/p' "$APP/.env" > "$APP/www/backend"
    setsid python3 -m http.server "$PORT" --bind 127.0.0.1 --directory "$APP/www" >> "$APP/app.log" 2>&1 < /dev/null &
    echo $! > "$APP/app.pid"
    echo "app: started (pid $!)" ;;
  stop)
    if running; then kill "$(cat "$APP/app.pid")"; echo "app: stopped"; else echo "app: not running"; fi
    rm -f "$APP/app.pid" ;;
esac
