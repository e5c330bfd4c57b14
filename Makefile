# The two commands a fresh machine needs: `make run` and `make test`.
# Each creates the virtualenv and installs what it needs by itself.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NODE_STAMP := tests/node/node_modules/.installed
NODE_REDIS_STAMP := tests/node_redis/node_modules/.installed
WEB_STAMP := web/node_modules/.installed
WEB_DIST := web/dist/index.html
ARGS ?=

BENCH_STAMP := $(VENV)/.bench-installed
BENCH_NODE_STAMP := bench/node/node_modules/.installed

.PHONY: install run cluster test lint typecheck pytest bench bench-cluster bench-failures soak clean

install: $(STAMP) $(NODE_STAMP) $(NODE_REDIS_STAMP) $(WEB_DIST)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(NODE_STAMP): tests/node/package.json tests/node/package-lock.json
	cd tests/node && npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

# the Redis bridge's interop tests: Socket.IO on @socket.io/redis-adapter, the emitter
$(NODE_REDIS_STAMP): tests/node_redis/package.json tests/node_redis/package-lock.json
	cd tests/node_redis && npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_REDIS_STAMP)

# The board page (web/): built when missing or older than its sources; served by `make run`
# at / on the app port. Its tests (tsc, Vitest, Chromium end to end) run inside pytest.
$(WEB_STAMP): web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	touch $(WEB_STAMP)

$(WEB_DIST): $(WEB_STAMP) web/index.html web/vite.config.ts web/tsconfig.json $(shell find web/src -type f 2>/dev/null)
	cd web && npm run build --silent

run: $(STAMP) $(WEB_DIST)
	$(PY) -m server --dev $(ARGS)

# several processes on one Redis behind nginx: README, "Several processes on Redis"
cluster: $(STAMP) $(WEB_DIST)
	$(PY) -m deploy.cluster $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check server tests examples bench deploy

typecheck: $(STAMP)
	$(VENV)/bin/mypy

pytest: install
	$(VENV)/bin/pytest $(PYTEST_ARGS)

test: install lint typecheck pytest

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

$(BENCH_NODE_STAMP): bench/node/package.json bench/node/package-lock.json
	cd bench/node && npm ci --no-audit --no-fund --loglevel=error
	touch $(BENCH_NODE_STAMP)

# Load tests against ours and the two peers, in one invocation: prints a table, writes JSON
# and a plot under bench/results/. BENCH_ARGS picks scenarios (see bench/README.md).
bench: $(BENCH_STAMP) $(BENCH_NODE_STAMP)
	$(PY) -m bench.run $(BENCH_ARGS)

# bench/cluster.py: the fan-out on two processes with Redis, ours in both bridge modes (pubsub,
# streams) against Node on its two adapters (redis-adapter, redis-streams-adapter), in one run.
# BENCH_ARGS e.g. "--quick", "--servers ours-streams,node-streams" (see bench/README.md)
bench-cluster: $(BENCH_STAMP) $(NODE_REDIS_STAMP)
	$(PY) -m bench.cluster $(BENCH_ARGS)

# bench/failures.py: what a stock client gets through a transport cut, a moved connection, a
# node killed with -9, Redis stopped and Redis frozen, for the same four peers (README, "Failures")
bench-failures: $(BENCH_STAMP) $(NODE_STAMP) $(NODE_REDIS_STAMP)
	$(PY) -m bench.failures $(BENCH_ARGS)

# bench/soak.py: floods, half-open connections and surrogate bombs against a real server
# process, each scenario on a fresh one; SOAK_ARGS e.g. "--quick", "--only half-open",
# "--repo /tmp/soak-base" (see bench/README.md, "Soak")
soak: $(BENCH_STAMP)
	$(PY) -m bench.soak $(SOAK_ARGS)

clean:
	rm -rf $(VENV) tests/node/node_modules tests/node_redis/node_modules bench/node/node_modules web/node_modules web/dist
