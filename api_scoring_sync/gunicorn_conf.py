"""gunicorn settings of the scoring-sync service, read from the environment.

Everything tunable (worker class, workers, threads, port) is a setting:
see scoring_bench.core.settings.Settings and scoring_bench.stack.servers.gunicorn_config.
"""

from scoring_bench.core.settings import Settings
from scoring_bench.stack.servers import gunicorn_config

globals().update(gunicorn_config("scoring-sync", Settings()))
