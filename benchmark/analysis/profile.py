"""The profiling experiment's breakdown (``profiles/<arch>/breakdown.json``): where a handler's wall time
goes, as shares."""

from __future__ import annotations

from pathlib import Path

from benchmark.analysis.raw import as_float, read_profile_shares


def profile_section(run_dir: Path, arch: str) -> dict[str, float] | None:
    """The numeric shares of the breakdown by part (model calls, feature store, ...), or None without one."""
    shares = read_profile_shares(run_dir, arch)
    if shares is None:
        return None
    return {str(key): share for key, value in shares.items() if (share := as_float(value)) is not None}
