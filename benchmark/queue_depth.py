"""The queue's depth over time: how many tasks wait in the broker, sampled while load runs.

The reading itself is the queue API's (``scoring_bench.service.queue.QueueDepth``, what its
``queue_depth`` metric reports). Rows are ``t`` (epoch s), ``depth``; a sample the broker did not
answer is left out.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

from benchmark.sampler import BackgroundSampler
from scoring_bench.core.settings import Settings
from scoring_bench.service.queue import QueueDepth

READ_TIMEOUT_S = 1.0


class QueueDepthSampler(BackgroundSampler):
    """The queue's depth every ``interval_s``, until the ``with`` block ends."""

    def __init__(self, path: Path, settings: Settings, interval_s: float = 0.25) -> None:
        super().__init__(path, interval_s)
        self.settings = settings

    def _run(self) -> None:
        depth = QueueDepth(self.settings, READ_TIMEOUT_S)
        try:
            with open(self.path, "w", newline="") as f:
                writer = csv.writer(f)
                writer.writerow(["t", "depth"])
                while True:
                    try:
                        writer.writerow([f"{time.time():.3f}", depth.read()])
                        f.flush()
                    except Exception:
                        pass
                    if self._stop.wait(self.interval_s):
                        break
        finally:
            depth.close()
