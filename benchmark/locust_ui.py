"""A "Comparison" tab in Locust's web UI: each architecture beside its ideal and beside sync.

Importing this module registers an ``events.init`` listener; where Locust runs a web UI (a standalone
Locust or a master, never a worker) it adds to that UI

- a tab, **Comparison**, with one row per architecture that has run (``sync predict``, ``async predict``,
  ``batched predict``, ``queue end_to_end``; :mod:`benchmark.entries`): its p50/p95/p99, current req/s and
  failures, the ideal latency of the stack's settings (:mod:`benchmark.ideal`; the settings read from the
  environment at start-up, as every process of the stack reads them), the p50's overhead over the ideal,
  and its p50 and req/s as ratios to sync's;
- ``GET /comparison``: the same rows as JSON numbers; ``GET /comparison/csv`` (linked from the Download
  Data tab).

Every number comes from Locust's own statistics (``environment.runner.stats``: on a master, what its
workers reported), the ones the Statistics tab shows; nothing is measured twice. The rows ride on the
UI's own poll of ``/stats/requests`` (in its ``extended_stats``, as Locust's ``examples/extend_web_ui.py``
does), so they refresh with the Statistics tab, every 2 s. The decisions are in
:mod:`benchmark.locust_ui_rows`; this module is the shell that reads the runner and serves them.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

from flask import Blueprint, Response, jsonify, request
from locust import events
from locust.env import Environment
from locust.stats import StatsEntry

from benchmark.locust_ui_rows import (
    ComparisonRow,
    EntrySnapshot,
    comparison_rows,
    ideals_for,
    rows_csv,
    snapshot,
    template_args,
    with_extended_stats,
)
from scoring_bench.core.settings import Settings

BLUEPRINT = "scoring_bench_comparison"


def snapshots_by_name(entries: Iterable[StatsEntry]) -> dict[str, EntrySnapshot]:
    """Snapshots keyed by entry name; entries of one name under several methods are merged first with
    Locust's own ``StatsEntry.extend`` (as Locust builds its total row)."""
    groups: dict[str, list[StatsEntry]] = defaultdict(list)
    for entry in entries:
        groups[entry.name].append(entry)
    result: dict[str, EntrySnapshot] = {}
    for name, group in groups.items():
        if len(group) == 1:
            result[name] = snapshot(group[0])
            continue
        merged = StatsEntry(group[0].stats, name, "", use_response_times_cache=False)
        for entry in group:
            merged.extend(entry)
        result[name] = snapshot(merged)
    return result


def install(environment: Environment, settings: Settings | None = None) -> None:
    """Add the tab, its routes and its share of ``/stats/requests`` to ``environment``'s web UI, if it
    has one (a worker or a headless Locust has none)."""
    web_ui = environment.web_ui
    app = web_ui.app if web_ui is not None else None
    if web_ui is None or app is None or BLUEPRINT in app.blueprints:
        return  # no web UI here, or the tab is in already (this module imported twice, e.g. also by path)
    ideals = ideals_for(settings or Settings())
    base_path = (getattr(environment.parsed_options, "web_base_path", None) or "").rstrip("/")
    web_ui.template_args.update(template_args(base_path))

    def current_rows() -> list[ComparisonRow]:
        runner = environment.runner
        if runner is None:
            return []
        return comparison_rows(snapshots_by_name(runner.stats.entries.values()), ideals)

    blueprint = Blueprint(BLUEPRINT, __name__, url_prefix=base_path or None)

    @blueprint.route("/comparison")
    @web_ui.auth_required_if_enabled
    def comparison() -> Response:
        return jsonify({"rows": [asdict(row) for row in current_rows()]})

    @blueprint.route("/comparison/csv")
    @web_ui.auth_required_if_enabled
    def comparison_csv() -> Response:
        return Response(
            rows_csv(current_rows()),
            mimetype="text/csv",
            headers={"Content-Disposition": "attachment; filename=comparison.csv"},
        )

    app.register_blueprint(blueprint)

    @app.after_request
    def add_rows(response: Response) -> Response:
        if request.path != f"{base_path}/stats/requests" or response.status_code != 200:
            return response
        payload = response.get_json(silent=True)
        if isinstance(payload, dict):
            response.set_data(json.dumps(with_extended_stats(payload, current_rows())))
        return response


@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    install(environment)
