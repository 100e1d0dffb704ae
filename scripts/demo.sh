#!/usr/bin/env bash
# make demo: bring the local lab up, then run the runbook (playbooks/site.yml) against it.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/lab.sh up
echo "demo: running playbooks/site.yml against inventories/local"
.venv/bin/ansible-playbook -i inventories/local playbooks/site.yml -e @.lab/lab-secrets.yml "$@"
echo "demo: the final report is artifacts/local/final-report.html (and .md); every phase's artifacts are"
echo "      in artifacts/local/ (backups, migration summary and error log, validation report, smoke tests,"
echo "      monitoring history, timeline.log). Roll back with: .venv/bin/ansible-playbook -i inventories/local \\"
echo "      playbooks/rollback.yml -e @.lab/lab-secrets.yml"
