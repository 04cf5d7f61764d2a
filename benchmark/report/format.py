"""Numbers as the report writes them: with their unit, or a dash when unknown."""

from __future__ import annotations

DASH = "—"


def number(value: float | int | None, spec: str = ".1f", unit: str = "") -> str:
    """``value`` formatted, with its unit; a dash when it is unknown."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return DASH
    return f"{value:{spec}}{' ' + unit if unit else ''}"


def ms(value: float | None) -> str:
    return number(value, ".1f", "ms")


def rps(value: float | None) -> str:
    return number(value, ".1f", "req/s")


def seconds(value: float | None) -> str:
    return number(value, ".2f", "s")


def share(ratio: float | None) -> str:
    """A ratio in percent with two decimals (failures)."""
    return DASH if ratio is None else number(ratio * 100, ".2f") + "%"


def whole_percent(ratio: float | None) -> str:
    """A share of the gap's change in whole percent (it may be negative or above 100%)."""
    return DASH if ratio is None else number(ratio * 100, ".0f") + "%"


def times(ratio: float) -> str:
    return f"{ratio:.1f}×" if ratio < 10 else f"{ratio:.0f}×"


def yes_no(value: bool | None) -> str:
    return DASH if value is None else "yes" if value else "no"


def positive(value: float | None) -> float | None:
    """``value`` when it is a positive number (a ratio can be taken of it), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return None
    return float(value)


def difference(a: float | None, b: float | None) -> float | None:
    return a - b if a is not None and b is not None else None


def spread(median: float | None, low: float | None, high: float | None, n: int, spec: str, unit: str) -> str:
    """A repeated measurement: ``745 req/s (690–781, n=3)``; a single one as itself."""
    if median is None:
        return DASH
    text = number(median, spec, unit)
    if n > 1 and low is not None and high is not None:
        text += f" ({low:{spec}}–{high:{spec}}, n={n})"
    return text
