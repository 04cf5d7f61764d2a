"""Faults under load: each architecture at a steady open-loop load while one fault at a time hits its
stack (a model API killed or frozen, Redis restarted, a server worker killed, the queue's worker or broker
killed), and how it fails, recovers, and — the queue — whether it loses a task.

:mod:`.plan` (which faults, their bounds; pure), :mod:`.inject` (the faults on a running stack),
:mod:`.experiment` (the timeline, the raw files), :mod:`.verdicts` and :mod:`.ledger` (the decisions; pure),
:mod:`.tasks` (the ledger's polling). The analysis into the summary: :mod:`benchmark.analysis.faults`.
"""
