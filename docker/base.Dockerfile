# syntax=docker/dockerfile:1
# scoring-bench-base: the one image every scoring-bench container starts from (the services'
# Dockerfiles, the seed job, Locust). Build it before them: `make docker-build` does.
#
#   builder  a virtualenv with every dependency at the version in constraints.txt
#   runtime  slim Python, that virtualenv, the project's code, a non-root user; no compiler
#
# Build arguments:
#   PYTHON_IMAGE  the Python base of both stages: the official slim image by default; make docker-test
#                 builds on a stand-in made from Debian's packages (docker/python-standin.Dockerfile),
#                 as registry images cannot be pulled where it runs
#   PIP_SOURCE    index (default): pip installs from the package index, meinheld built with the build
#                 tools; wheels: only from docker/wheels/ (made on the host by `make docker-wheels`),
#                 no package index and no compiler needed in the build (an air-gapped build)
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ARG PIP_SOURCE=index
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /build
COPY pyproject.toml constraints.txt ./
# Only a README unless `make docker-wheels` filled it (.dockerignore lets this folder in).
COPY docker/wheels/ /wheels/
# The project's runtime dependencies (pyproject.toml), each at its pinned version; the
# project itself is not installed: its code is copied to /app (PYTHONPATH), as `make up`
# runs it from the work tree.
# meinheld (SCORING_SYNC_WORKER_CLASS=meinheld) pins greenlet<0.5, which does not build on
# Python 3.11+; it runs with the current greenlet installed before it (as `make install` does).
RUN set -e; \
    case "$PIP_SOURCE" in \
      wheels) export PIP_NO_INDEX=1 PIP_FIND_LINKS=/wheels ;; \
      index) apt-get update \
          && apt-get install -y --no-install-recommends build-essential \
          && rm -rf /var/lib/apt/lists/* ;; \
      *) echo "PIP_SOURCE is index or wheels, not '$PIP_SOURCE'" >&2; exit 1 ;; \
    esac; \
    python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt; \
    pip install --upgrade pip setuptools wheel; \
    pip install -c constraints.txt -r requirements.txt; \
    pip install -c constraints.txt --no-deps --no-build-isolation meinheld
# The project's code, without the wheels (they are in the virtualenv now).
COPY . /src
RUN rm -rf /src/docker

FROM ${PYTHON_IMAGE} AS runtime
# Inside a container every service binds all interfaces (HOST is a setting; loopback by default).
# PROMETHEUS_MULTIPROC_DIR: where a service's processes (gunicorn or uvicorn workers, a prefork
# pool) write their metrics for /metrics to sum; writable by the service user, emptied at start
# by scoring_bench.stack.serve (scoring_bench/service/metrics.py).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus-multiproc \
    HOST=0.0.0.0
RUN groupadd --system --gid 10001 scoring \
    && useradd --system --uid 10001 --gid scoring --home-dir /app --no-create-home scoring
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
# Owned by root and read-only for the service user; compiled now, as it cannot write there.
COPY --from=builder /src /app
RUN python -m compileall -q /app
USER scoring:scoring
CMD ["python", "-m", "scoring_bench.stack.serve"]
