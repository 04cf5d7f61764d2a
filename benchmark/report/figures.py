"""What every plot shares: the Agg backend (no display needed), the architectures' colours, saving a
figure as ``<out_dir>/<name>.png``. Figures are made without pyplot: no global state, nothing kept open."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from matplotlib.figure import Figure

COLORS = {"sync": "#d95f02", "async": "#1b6ec2", "batched": "#7570b3", "queue": "#1b9e77"}
FALLBACK_COLORS = ("#e7298a", "#66a61e", "#a6761d")
DPI = 110


def color(arch: str, index: int = 0) -> str:
    return COLORS.get(arch, FALLBACK_COLORS[index % len(FALLBACK_COLORS)])


def save(fig: Figure, out_dir: Path, name: str) -> Path:
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    fig.savefig(path, dpi=DPI)
    return path


def linspace(low: float, high: float, count: int) -> list[float]:
    step = (high - low) / (count - 1)
    return [low + i * step for i in range(count)]


def nan_if_none(value: float | None) -> float:
    """A value to plot: a missing one leaves a gap in the line."""
    return value if value is not None else float("nan")
