"""The open-loop experiment: requests sent on a schedule that does not wait for the answers.

Locust is a closed loop: when the server stalls its users stop sending, so its percentiles hide the stall
(coordinated omission). Here every request has a scheduled send time fixed in advance, and its latency is
measured from that time. :mod:`.schedule` (when to send) and :mod:`.accounting` (what the records say) are
pure; :mod:`.generator` is the asyncio client that sends and records, run as its own process by
:mod:`.__main__` (so its CPU can be sampled like Locust's) and started by :mod:`.experiment`; :mod:`.wrk`
drives the independent ``wrk`` cross-check. :mod:`.records` is the one definition of the raw files they
write (their layout is in its docstring).

The analysis (:mod:`benchmark.analysis.openloop`) imports the pure modules only: :mod:`.records`,
:mod:`.accounting` and :mod:`.wrk`.
"""
