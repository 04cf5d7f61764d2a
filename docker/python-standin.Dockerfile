# A stand-in for the official python:3.11-slim-bookworm image, made from Debian's own packages, for
# machines that cannot pull registry images (make docker-test builds on it; doc/containers.md).
# FROM: a `debootstrap --variant=minbase bookworm` root file system imported with `podman import`
# (benchmark/containers/standin.py does both). Like the official image it has `python` (3.11),
# its venv module and pip's wheel, and no compiler.
ARG DEBIAN_IMAGE=localhost/scoring-bench-debian:bookworm
FROM ${DEBIAN_IMAGE}
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3.11 python3.11-venv ca-certificates \
    && ln -s /usr/bin/python3.11 /usr/local/bin/python \
    && ln -s /usr/bin/python3.11 /usr/local/bin/python3 \
    && apt-get clean && rm -rf /var/lib/apt/lists/*
ENV LANG=C.UTF-8
CMD ["python3"]
