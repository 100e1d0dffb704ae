#!/usr/bin/env bash
# make demo: bring the local lab up, then run the runbook (playbooks/site.yml) against it.
# make demo-managed (LAB_PROFILE=managed): the same against the lab's managed PostgreSQL (inventories/managed).
set -euo pipefail
cd "$(dirname "$0")/.."
export LAB_PROFILE=${LAB_PROFILE:-self-hosted}
env=$([ "$LAB_PROFILE" = managed ] && echo managed || echo local)
./scripts/lab.sh up
echo "demo: running playbooks/site.yml against inventories/$env"
.venv/bin/ansible-playbook -i "inventories/$env" playbooks/site.yml -e @.lab/lab-secrets.yml "$@"
echo "demo: the final report is artifacts/$env/final-report.html (and .md); every phase's artifacts are"
echo "      in artifacts/$env/ (backups, migration summary and error log, validation report, smoke tests,"
echo "      monitoring history, timeline.log). Roll back with: .venv/bin/ansible-playbook -i inventories/$env \\"
echo "      playbooks/rollback.yml -e @.lab/lab-secrets.yml"
