"""scoring-bench: sync vs async vs queue model serving, measured.

Three layers, each a subpackage; a layer imports only the ones before it
(tests/unit/test_layers.py checks it):

* ``core``: pure decisions, no I/O and no web framework — settings, schemas, errors, the fake
  model, the feature layout, scoring, timing, endpoints, health, task documents;
* ``service``: the I/O shells the services run — the sync and async scorers (Redis and HTTP
  clients), the Flask and FastAPI adapters, metrics, profiler hooks, the queue's Celery app;
* ``stack``: processes — the registry of how each service is served, the supervisor of the
  local stack, the containers' entry point, probes, the local Prometheus, the stack's commands.
"""

__version__ = "0.1.0"
