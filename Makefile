# Two commands on a fresh machine: `make run` (set up, then run the gateway) and `make test`
# (set up, then run every test). Each step is idempotent and fast when already done.
SHELL := bash
.SHELLFLAGS := -o errexit -o pipefail -o nounset -c
.DEFAULT_GOAL := help

PY := .venv/bin/python

.PHONY: help run test check e2e test-latest setup setup-test python centrifugo secrets frontend lint typecheck bench fuzz token clean cluster

help:
	@echo "make run    set up and run the gateway (Centrifugo :8000, callbacks :3000)"
	@echo "make test   set up and run every test (what CI runs)"
	@echo "make check  lint, types and the tests that start no gateway (the inner loop, one to two minutes)"
	@echo "make e2e    the end-to-end and multi-instance tests only (real Centrifugo, gunicorn, Redis, ...)"
	@echo "make test-latest  make check's tests against the newest Django 5.2.x, gunicorn, redis-py, prometheus-client, msgspec (informational)"
	@echo "make bench  run the benchmarks in bench/"
	@echo "make fuzz   100,000 fuzzed requests against a real gateway's callbacks (FUZZ_SEED=N for another run)"
	@echo "make cluster  the multi-instance topology as local processes (CLUSTER_REDIS=single|sentinel|cluster)"
	@echo "make token USER=alice   print a connection token"

python:
	@scripts/setup-python.sh

centrifugo:
	@scripts/install-centrifugo.sh

secrets: python
	@scripts/dev-secrets.sh

# centrifuge-js for the admin's live view, from npm (frontend/package-lock.json); after the system
# packages, which bring npm.
frontend:
	@scripts/build-frontend.sh

setup: python centrifugo secrets
	@scripts/install-system-packages.sh run
	@scripts/build-frontend.sh

setup-test: python centrifugo
	@scripts/install-system-packages.sh test
	@scripts/build-frontend.sh

run: setup
	@scripts/run-gateway.sh

test: setup-test lint typecheck
	@scripts/test.sh

# The tiers of `make test`: the tests marked e2e (tests/e2e) or cluster (tests/cluster) start real
# processes; everything else runs in-process against a real Redis at most.
check: setup-test lint typecheck
	@scripts/test.sh -m "not e2e and not cluster"

e2e: setup-test
	@scripts/test.sh -m "e2e or cluster"

# Early warning, never a red build: its own virtualenv (var/latest-venv), a PASSED/FAILED banner, exit 0.
test-latest: setup-test
	@scripts/test-latest.sh

lint: python
	@.venv/bin/ruff check .
	@.venv/bin/ruff format --check .

typecheck: python
	@DJANGO_SETTINGS_MODULE=realtime.settings.test .venv/bin/mypy

bench: setup-test
	@scripts/bench.sh

# The acceptance fuzz run of tests/e2e/test_fuzz.py, five times longer (the test suite runs 20,000).
fuzz: setup-test
	@FUZZ_REQUESTS=$${FUZZ_REQUESTS:-100000} scripts/test.sh tests/e2e/test_fuzz.py -s -o timeout=600

# The multi-instance topology (docker-compose.multi-instance.yml) as local processes; Ctrl-C stops it.
# CLUSTER_REDIS=single (default), sentinel or cluster picks the Redis (scripts/cluster.sh).
cluster: setup-test secrets
	@scripts/cluster.sh

token: secrets
	@$(PY) manage.py issue_connection_token "$${USER:?usage: make token USER=alice}"

clean:
	rm -rf var/*.sqlite3 var/redis staticfiles .pytest_cache .mypy_cache .ruff_cache
