"""The benchmark: the experiments that drive a stack (runner, load and locustfile, queue client,
burst, timeit, profiling, attribution, samplers), the typed run summary (``summary``), the analysis
of a run folder's raw files (``analysis/``) and the report built from the summary (``report/``).
Its ``cli`` is the ``scoring-bench`` command."""
