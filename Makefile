# Kinetic: `make run` starts the platform on its embedded stack; `make test` runs every tier.
# Only Python 3.11+ and make are needed: uv (pinned) is installed into .tools/ on first use,
# and every Python dependency comes from the committed uv.lock.

PYTHON ?= python3
UV_VERSION := 0.13.9
UV := $(CURDIR)/.tools/bin/uv
RUN := $(UV) run --frozen --no-sync
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/.venv


.PHONY: run token deploy test-docker test test-unit test-contracts test-browser chromium bench chaos contracts install lock clean

$(UV):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Kinetic needs Python 3.11 or newer")'
	$(PYTHON) -m venv .tools
	.tools/bin/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

.venv/.installed: $(UV) uv.lock pyproject.toml contracts/pyproject.toml infra/pyproject.toml services/*/pyproject.toml
	$(UV) sync --frozen --all-packages --python $(PYTHON)
	@touch $@

install: .venv/.installed

# make run NATS_NODES=3: a three-node JetStream cluster on loopback, streams replicated;
# make run REPLICAS=3: three processes of every role of every service.
NATS_NODES ?= 1
REPLICAS ?= 1

run: install
	$(RUN) kinetic-stack run --data-dir .kinetic --nats-nodes $(NATS_NODES) --replicas $(REPLICAS)

token: install
	@$(RUN) kinetic-stack token $(or $(STAFF),olivia.operator) --data-dir .kinetic

# The end-to-end tier and every other tier at once, each with its own servers (tests/tiers.py).
test: install chromium
	$(RUN) python -m tests.tiers

# The browser tier (tests/browser) drives Debian's Chromium through Playwright, which cannot
# download a browser of its own here: as root this installs the package, otherwise it says how.
chromium:
	@sh scripts/ensure-chromium

test-browser: install chromium
	$(RUN) pytest tests/browser

test-unit: install
	$(RUN) pytest -m "not platform" services contracts

test-contracts: install
	$(RUN) pytest tests/contracts

bench: install
	$(RUN) python -m tests.bench

# The fault run of the scale-out design: PATIENTS whole episodes on three replicas of every
# process and three NATS nodes while a node, a replica of every role and a relay per service
# are SIGKILLed; fails unless nothing was lost or done twice and every workflow ended.
PATIENTS ?= 200

chaos: install
	$(RUN) python -m tests.chaos --patients $(PATIENTS)

contracts: install
	$(RUN) python -m kinetic_infra.contracts_build

# deploy/compose.yaml and deploy/k8s/*.yaml, generated from the service definitions.
deploy: install
	$(RUN) python -m kinetic_infra.deploy_build

# The compose tier: the platform from deploy/compose.yaml on a Docker engine (pytest-docker).
# Without an engine it reports that it did not run.
test-docker: install
	$(RUN) pytest tests/docker

lock: $(UV)
	$(UV) lock

clean:
	rm -rf .venv .tools .pytest_cache
