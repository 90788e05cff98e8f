# Orbiter: `make up` runs a single-node cluster, `make test` runs every test.
# Everything runs from the virtual environment .venv that `make deps` builds.
VENV := $(CURDIR)/.venv
PYTHON := $(VENV)/bin/python
export PATH := $(VENV)/bin:$(PATH)
PROTOS := $(wildcard orbiter/proto/*.proto)
# Mesos's v1 wire format for the Mesos scheduler API (orbiter/mesos): messages only.
MESOS_PROTOS := $(wildcard orbiter/mesos/proto/*.proto)

.PHONY: deps up test test-fast lint docs proto bench bench-quick clean

deps:
	@./scripts/install-deps.sh

up: deps
	$(VENV)/bin/orbiter up

test: deps lint
	$(PYTHON) -m pytest -q -p no:cacheprovider

# Unit tests only: seconds, no servers.
test-fast:
	$(PYTHON) -m pytest -q tests/unit

lint:
	$(PYTHON) -m ruff check orbiter tests bench

# docs/configuration.md is generated from orbiter/config.py's SCHEMA; a test checks it.
docs:
	$(PYTHON) -m orbiter.cli config reference --output docs/configuration.md

proto:
	$(PYTHON) -m grpc_tools.protoc -I. --python_out=. --grpc_python_out=. --pyi_out=. $(PROTOS)
	$(PYTHON) -m grpc_tools.protoc -I. --python_out=. --pyi_out=. $(MESOS_PROTOS)

# Benchmarks print medians of 3 runs and where the time goes (py-spy profiles).
bench: deps
	$(PYTHON) -m pip install -q --disable-pip-version-check -e '.[bench]'
	$(PYTHON) bench/launch.py
	$(PYTHON) bench/allocator.py --profile
	$(PYTHON) bench/security.py
	$(PYTHON) bench/satellite.py
	$(PYTHON) bench/satellite_vs_prometheus.py
	$(PYTHON) bench/satellite_scale.py
	$(PYTHON) bench/master_lag.py
	$(PYTHON) bench/chaos.py
	$(PYTHON) bench/executors.py
	$(PYTHON) bench/rolling_restart.py
	$(PYTHON) bench/remote_write.py
	$(PYTHON) bench/alerts.py
	$(PYTHON) bench/archive.py
	$(PYTHON) bench/isolation.py
	$(PYTHON) bench/docker_launch.py

bench-quick: deps
	$(PYTHON) bench/launch.py --quick --no-profile
	$(PYTHON) bench/allocator.py --quick
	$(PYTHON) bench/satellite.py --quick --no-profile
	$(PYTHON) bench/master_lag.py --quick
	$(PYTHON) bench/executors.py --quick
	$(PYTHON) bench/rolling_restart.py
	$(PYTHON) bench/remote_write.py --quick
	$(PYTHON) bench/alerts.py --quick
	$(PYTHON) bench/archive.py --samples 30000 --events 2000

clean:
	rm -rf .orbiter build *.egg-info .pytest_cache .ruff_cache
