#!/usr/bin/env bash
# make demo: bring the local lab up, then run the runbook (playbooks/site.yml) against it.
# make demo-managed (LAB_PROFILE=managed): the same against the lab's managed PostgreSQL (inventories/managed).
# make demo-online (DEMO_MODE=online): the runbook online (inventories/online), the lab app's users writing
# through its API (lab/app_writer.py) from before the capture until the maintenance page shows.
set -euo pipefail
cd "$(dirname "$0")/.."
export LAB_PROFILE=${LAB_PROFILE:-self-hosted}
DEMO_MODE=${DEMO_MODE:-offline}
env=$([ "$LAB_PROFILE" = managed ] && echo managed || echo local)
./scripts/lab.sh up
if [ "$DEMO_MODE" = online ]; then
  env=online
  APP=.lab/app
  # The online runbook starts from the app on MongoDB: an earlier demo may have cut it over.
  if ! grep -q '^DATABASE_URL=mongodb' "$APP/app.env" || [ -f "$APP/maintenance" ]; then
    ./scripts/labapp.sh stop
    (umask 077; printf 'DATABASE_URL=mongodb://127.0.0.1:%s/nextcrm\n' "${LAB_MONGO_PORT:-37017}" > "$APP/app.env")
    rm -f "$APP/maintenance"
    ./scripts/labapp.sh start
  fi
  : > "$APP/writes.jsonl"; chmod 600 "$APP/writes.jsonl"
  setsid .venv/bin/python lab/app_writer.py --url "http://127.0.0.1:${LAB_APP_PORT:-18080}" --log "$APP/writes.jsonl" \
    > /dev/null 2>&1 < /dev/null &
  writer=$!
  trap 'kill $writer 2>/dev/null || true' EXIT
  echo "demo: the lab app's users write through its API (pid $writer, log $APP/writes.jsonl) until maintenance"
fi
echo "demo: running playbooks/site.yml against inventories/$env"
.venv/bin/ansible-playbook -i "inventories/$env" playbooks/site.yml -e @.lab/lab-secrets.yml "$@"
echo "demo: the final report is artifacts/$env/final-report.html (and .md); every phase's artifacts are"
echo "      in artifacts/$env/ (backups, migration summary and error log, validation report, smoke tests,"
echo "      monitoring history, timeline.log, cutover-window.json). Roll back with: .venv/bin/ansible-playbook \\"
echo "      -i inventories/$env playbooks/rollback.yml -e @.lab/lab-secrets.yml"
