"""gunicorn settings of the model-sync service, read from the environment.

Everything tunable (worker class, workers, threads, port) is a setting:
see scoring_bench.settings.Settings and scoring_bench.servers.gunicorn_config.
"""

from scoring_bench.servers import gunicorn_config

globals().update(gunicorn_config("model-sync"))
