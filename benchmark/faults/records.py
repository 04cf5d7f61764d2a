"""Where the faults experiment's raw files go (what each holds: :mod:`benchmark.faults.experiment`)."""

from __future__ import annotations

from pathlib import Path

FAULTS_DIR = "faults"
INDEX_JSON = "index.json"
FAULT_JSON = "fault.json"
LEDGER_CSV = "ledger.csv"


def fault_dir(run_dir: Path, arch: str, name: str) -> Path:
    """``faults/<arch>/<fault>/``: one fault run's files (beside the generator's)."""
    return Path(run_dir) / FAULTS_DIR / arch / name
