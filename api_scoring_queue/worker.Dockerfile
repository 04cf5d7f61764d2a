# queue-worker: the queue architecture's Celery worker, served as scoring_bench.stack.servers serves it.
# Built on scoring-bench-base (docker/base.Dockerfile), which `make docker-build` builds first.
ARG BASE_IMAGE=scoring-bench-base
FROM ${BASE_IMAGE}
# No port: healthy while the worker answers a control ping through the broker, as the local
# supervisor checks it. Each check imports Celery (about half a second of CPU): hence every 10 s.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-m", "scoring_bench.stack.serve", "--check", "queue-worker"]
# The registry's command for the settings in the environment (see scoring_bench/stack/serve.py).
CMD ["python", "-m", "scoring_bench.stack.serve", "queue-worker"]
