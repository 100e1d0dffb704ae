# The newcomer's commands: `make demo` (the whole runbook against the local lab) and `make test`.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

.PHONY: setup test test-py lint molecule molecule-run demo demo-managed demo-online lab-up lab-up-managed lab-down bench bench-online bench-peers bench-backup bench-capture fuzz chaos clean

setup:
	./scripts/setup.sh

lint: setup
	$(BIN)/ruff check mongo2pg library module_utils filter_plugins roles tests scripts lab
	$(BIN)/ansible-lint --profile production playbooks roles molecule

test-py: setup
	$(BIN)/pytest -q tests

# Every suite: lint, the engine and module tests (real PostgreSQL, nx-27017, ansible-playbook),
# and the lab/Molecule scenarios.
test: setup
	$(BIN)/ruff check mongo2pg library module_utils filter_plugins roles tests scripts lab
	$(BIN)/ansible-lint --profile production playbooks roles molecule
	$(BIN)/pytest -q tests
	$(MAKE) --no-print-directory molecule-run

# The property tests (tests/test_properties.py) with many random examples instead of make test's seeded
# dozen: M2P_EXAMPLES=N sets how many (default 300).
fuzz: setup
	M2P_HYPOTHESIS_PROFILE=fuzz $(BIN)/pytest -q tests/test_properties.py
	scripts/fuzz_c_builders.sh

# Molecule scenarios (molecule/<scenario>, listed in molecule/README.md), with the suite's total time.
molecule: setup
	$(MAKE) --no-print-directory molecule-run

molecule-run:
	@start=$$(date +%s); PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/molecule test --all; rc=$$?; \
	  echo "molecule: $$(ls molecule/*/molecule.yml | wc -l) scenarios in $$(( $$(date +%s) - start )) s (rc=$$rc)"; exit $$rc

lab-up: setup
	./scripts/lab.sh up

lab-up-managed: setup
	LAB_PROFILE=managed ./scripts/lab.sh up

lab-down:
	./scripts/lab.sh down

demo: setup
	./scripts/demo.sh

# The same runbook against the lab's managed PostgreSQL: no host of ours, the provider's admin login, TLS
# only, the app through PgBouncer in transaction mode (inventories/managed, scripts/lab-provider.sh).
demo-managed: setup
	LAB_PROFILE=managed ./scripts/demo.sh

# The runbook online (inventories/online, docs/online.md): capture, bulk and catch-up while the lab app's users
# write through its API; the window holds only the cutover (artifacts/online/cutover-window.json).
demo-online: setup
	DEMO_MODE=online ./scripts/demo.sh

# Faults at seeded random moments of a live migration (engine killed, target and source restarted, a lock
# held), ROUNDS rounds: each round's tables must equal an uninterrupted run's (scripts/chaos.py).
ROUNDS ?= 3
SEED ?= 1
chaos: setup
	$(BIN)/python scripts/chaos.py --rounds $(ROUNDS) --seed $(SEED)

# On a PostgreSQL configured as production (the postgresql role's settings, durability on): scale 1,
# production-sized documents, scale 4; every target printed as met or not.
bench: setup
	$(BIN)/python scripts/bench.py
	$(BIN)/python scripts/bench_online.py

# The online migration's figures (durable server, a live nx-27017 source under a steady write load): a backlog
# of 10,000 changes drained, and the engine's part of the window at two scales (SCALES, default the issue's 1 4).
SCALES ?= 1 4
bench-online: setup
	$(BIN)/python scripts/bench_online.py --scales $(SCALES)

# Ours against dlt (pinned, in its own venv under .cache/) on the same documents and server, one run.
bench-peers: setup
	$(BIN)/python scripts/bench_peers.py

# Dump and restore through a MongoDB wire server at two scales: speed and flat memory.
bench-backup: setup
	$(BIN)/python scripts/bench_backup.py 0.05 1

# What change capture (the lossless rollback's triggers) costs the app's writes, on durable settings.
bench-capture: setup
	$(BIN)/python scripts/bench_capture.py

clean: lab-down
	rm -rf artifacts .cache/bench
