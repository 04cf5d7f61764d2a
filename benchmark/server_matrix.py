"""``python -m benchmark.server_matrix``: the attribution's ``servers`` study alone, without a whole run.

The Flask handler on gunicorn gthread, gunicorn gevent and granian (WSGI); the FastAPI handler on uvicorn
and granian (ASGI): the configurations, stacks and rounds are the study's (benchmark/attribution_servers.py),
measured by the attribution experiment's code (:func:`benchmark.attribution.run_attribution` with
``BENCH_ATTRIBUTION_STUDIES=servers``), the sizes from the profile (``BENCH_SERVERS_ROUNDS``,
``BENCH_SERVERS_TIMEIT``, ``BENCH_SERVERS_LOAD_S``). Writes ``<results>/<run id>/attribution/`` as a run's
attribution experiment does, and ``servers.md``: the report's table and the split of the gap.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from benchmark.analysis.attribution import read_measurements
from benchmark.analysis.servers import servers_section
from benchmark.attribution import run_attribution
from benchmark.attribution_servers import STUDY
from benchmark.report.blocks import render_markdown
from benchmark.report.servers import servers_blocks
from benchmark.settings import BenchSettings


def report(run_dir: Path) -> str:
    """The study's table and sentences (Markdown) from a run folder's measurements."""
    return render_markdown(servers_blocks(servers_section(read_measurements(run_dir))), run_dir)


def main() -> int:
    base = BenchSettings(architectures=["sync", "async"], bench_attribution_studies=[STUDY])
    run_dir = base.results_dir / (base.run_id or time.strftime("servers-%Y%m%d-%H%M%S"))
    run_attribution(base, run_dir, lambda: print(".", end="", file=sys.stderr, flush=True))
    text = report(run_dir)
    (run_dir / "servers.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
