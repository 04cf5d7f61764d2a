"""The soak (``make soak``, ``BENCH_PROFILE=soak``): a constant open-loop load on each architecture for
``SOAK_S`` seconds while every service process is sampled — does anything grow?

:mod:`.experiment` runs it on a stack, :mod:`.sampler` samples each process (RSS, open descriptors,
threads, TCP connections), :mod:`.records` says where the files go, :mod:`.growth` holds the decisions
(windows, slopes, verdicts); :mod:`benchmark.analysis.soak` turns the files into the summary's ``soak``.
"""
