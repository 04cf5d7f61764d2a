"""scoring-bench: sync vs async vs queue model serving, measured.

Modules in this package split into two groups:

* pure decisions, no I/O and no web framework: ``settings``, ``schemas``,
  ``errors``, ``model``, ``features``, ``scoring``, ``timing``;
* thin I/O shells around them: ``scorer_sync`` / ``scorer_async`` (Redis and
  HTTP clients), ``flask_adapter`` / ``fastapi_adapter`` (web frameworks),
  ``servers`` and ``supervisor`` (processes), ``cli``.
"""

__version__ = "0.1.0"
