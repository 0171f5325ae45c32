# celery-fleet: two commands set everything up.
#   make demo   installs what it needs, brings the lab up, deploys site.yml, runs the routing demo
#   make test   lint + unit tests + end-to-end tests on a lab it brings up and tears down
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV      ?= .venv
PYTHON    ?= python3
INVENTORY ?= inventory/lab
BIN       := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export ANSIBLE_FORCE_COLOR ?= 0

# Debian packages the controller needs: podman and its helpers for the lab, mmdebstrap to build
# the base image, python3-venv for the controller's venv, vagrant for the Vagrant machines, hey
# for the HTTP load of make bench.
APT_PACKAGES := podman runc mmdebstrap uidmap slirp4netns fuse-overlayfs netavark aardvark-dns \
                containernetworking-plugins iproute2 openssh-client python3-venv make vagrant hey
# The stack's wiring first, then the environment (whose values win): inventory/stack/hosts.yml.
PLAYBOOK := $(BIN)/ansible-playbook -i inventory/stack -i $(INVENTORY)
# Vagrant's docker provider over podman: vagrant/bin/docker first in PATH.
VAGRANT_DOCKER := cd vagrant && PATH=$(CURDIR)/vagrant/bin:$(PATH) VAGRANT_DEFAULT_PROVIDER=docker vagrant

.PHONY: help setup system-packages venv collections wheelhouse lab-image lab deploy demo demo-routing \
        test lint unit molecule e2e e2e-and-vagrant vagrant-up vagrant-test vagrant-destroy drills destroy destroy-all \
        collection bench bench-deploy bench-tls clean

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

setup: system-packages venv collections ## Install apt packages, the venv and the Ansible collections

system-packages: ## Install the controller's Debian packages (only those missing)
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing: $$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

venv: $(VENV)/.installed ## Create the venv with pinned Python packages
$(VENV)/.installed: pyproject.toml app/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e ./app -e '.[dev]'
	touch $@

collections: venv ## Make sure the pinned collections are there (from the ansible package; Galaxy only if missing)
	@$(BIN)/python tools/check_collections.py requirements.yml || \
	  $(BIN)/ansible-galaxy collection install -r requirements.yml

wheelhouse: setup ## Build the wheelhouse the hosts install the app from
	$(PLAYBOOK) playbooks/deploy/wheelhouse.yml

lab-image: setup ## Build the lab's base image if it is missing (the lab and Molecule run it)
	$(PLAYBOOK) playbooks/lab/image.yml

lab: setup ## Bring the lab up (podman system containers, one per inventory host)
	$(PLAYBOOK) playbooks/lab/up.yml

deploy: lab ## Deploy the whole stack (site.yml)
	$(PLAYBOOK) playbooks/site.yml

demo-routing: ## Run the routing demo against a deployed stack
	$(PLAYBOOK) playbooks/demo-routing.yml

demo: deploy demo-routing ## Lab up + deploy + routing demo

drills: ## Run every failover drill against a deployed stack (reports in results/)
	$(PLAYBOOK) playbooks/drills/all.yml

lint: setup ## ruff, yamllint, ansible-lint (production profile)
	$(BIN)/ruff check app tests tools molecule
	$(BIN)/ruff format --check app tests tools molecule
	$(BIN)/yamllint --strict .
	$(BIN)/ansible-lint --profile production

unit: setup ## App unit tests, static checks of the roles, inventories and collection (no lab)
	$(BIN)/pytest -q tests/unit tests/static

# Every Molecule scenario, MOLECULE_JOBS at a time (each makes and removes its own hosts; longest
# first, so the two lanes end together); each one's output is printed whole when it ends, and
# its seconds are appended to results/molecule-times.txt (docs/benchmarks.md).
MOLECULE_SCENARIOS ?= app cluster bad_variables supervisor security redis fleet_app lab
MOLECULE_JOBS ?= 2
molecule: setup ## Role scenarios: molecule test -s <scenario> for each of MOLECULE_SCENARIOS, MOLECULE_JOBS at a time
	PATH="$(abspath $(BIN)):$$PATH" tools/molecule_scenarios.sh $(MOLECULE_JOBS) $(MOLECULE_SCENARIOS)

e2e: setup ## End-to-end tests: bring the lab up once, deploy, assert from outside, tear down
	$(BIN)/pytest -v -rfEs --durations=30 tests/e2e

# e2e and vagrant-test at once. Both are mostly CPU-bound on 2 cores, so each runs slower beside
# the other; the e2e's drills still leave idle waits (rate-limited streams, failure detectors)
# that the Vagrant flow fills: about 250 s saved in one measured run (docs/benchmarks.md, the
# fresh-clone run on 3484f2a; one after the other, e2e ~1600 s + Vagrant ~430 s on an earlier
# day). They share nothing but the controller's wheelhouse, which playbooks/deploy/wheelhouse.yml
# builds under a lock: other podman network, subnet, container names, inventory and reports.
# vagrant-test's output goes to results/vagrant-test.log and the e2e's to the terminal and
# results/e2e.log; when both are done the Vagrant log is printed, then the e2e's summary again
# (a CI log may keep only its tail). The phase fails if either failed.
e2e-and-vagrant: setup ## e2e and vagrant-test side by side (make test's last phase)
	@mkdir -p results; \
	$(MAKE) --no-print-directory vagrant-test > results/vagrant-test.log 2>&1 & vagrant_pid=$$!; \
	e2e=0; $(MAKE) --no-print-directory e2e 2>&1 | tee results/e2e.log || e2e=$$?; \
	vagrant=0; wait $$vagrant_pid || vagrant=$$?; \
	echo "----- vagrant-test, run beside e2e (results/vagrant-test.log) -----"; \
	cat results/vagrant-test.log; \
	echo "----- e2e's summary (results/e2e.log) -----"; \
	sed -n '/short test summary info/,$$p' results/e2e.log | tail -n 80 | grep . || tail -n 3 results/e2e.log; \
	echo "e2e: exit $$e2e; vagrant-test: exit $$vagrant"; \
	[ $$e2e -eq 0 ] && [ $$vagrant -eq 0 ]

# Everything CI runs, phase after phase (stopping at the first that fails); the seconds of each
# phase are appended to results/test-phases.txt (docs/benchmarks.md).
TEST_PHASES := lint unit molecule e2e-and-vagrant
test: setup ## Everything CI runs: lint, unit, molecule, then e2e beside vagrant-test (seconds per phase in results/)
	@mkdir -p results; for phase in $(TEST_PHASES); do \
	  start=$$(date +%s); \
	  if $(MAKE) --no-print-directory $$phase; then r=passed; else r=FAILED; fi; \
	  echo "$$(date -u +%FT%TZ) phase $$phase: $$r in $$(( $$(date +%s) - start )) s" | tee -a results/test-phases.txt; \
	  [ $$r = passed ] || exit 1; \
	done

vagrant-up: setup ## No hypervisor: the six Vagrant machines as podman containers (docker provider), provisioned
	$(BIN)/ansible-playbook -i inventory/stack -i inventory/vagrant playbooks/lab/vagrant-docker.yml
	$(VAGRANT_DOCKER) up --provider=docker

vagrant-test: setup ## The Vagrant flow end to end: validate, up, routing demo, halt, up, destroy
	$(BIN)/pytest -v -rs --durations=10 tests/vagrant

vagrant-destroy: ## Remove the Vagrant machines (docker provider) and their network
	$(VAGRANT_DOCKER) destroy -f
	$(BIN)/ansible-playbook -i inventory/stack -i inventory/vagrant playbooks/lab/vagrant-docker.yml -e vagrant_docker_state=absent

destroy: ## Remove the lab containers and network (keeps the base image)
	$(PLAYBOOK) playbooks/lab/destroy.yml

destroy-all: ## Remove the lab and its base image
	$(PLAYBOOK) playbooks/lab/destroy.yml -e lab_remove_image=true

collection: setup ## Build the roles as the celery_fleet.stack collection into build/
	$(BIN)/ansible-galaxy collection build --force --output-path build .

bench-deploy: setup ## Measure a first deploy on bare lab hosts and the idempotent re-run
	$(BIN)/python tools/bench_deploy.py --inventory $(INVENTORY)

bench: ## Throughput in one run on a deployed lab: raw kombu, Celery, the HTTP API (results/bench.json, .png)
	$(BIN)/python tools/bench.py --inventory $(INVENTORY)

bench-tls: ## What TLS costs a connection, from a worker of a deployed lab (results/bench-tls.json)
	$(BIN)/python tools/bench_tls.py --inventory $(INVENTORY)

clean: destroy ## Remove the lab, the venv and caches
	rm -rf $(VENV) .cache build results
