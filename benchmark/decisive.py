"""The decisive measurements of a run and their repetitions: which rates the open loop offers, which
of them a repetition looks at again, and the p99 a rate must stay under. Plain functions; the runner
does the I/O.

- The first sweep offers fractions of the capacity the ramp measured (``BENCH_OPEN_FRACTIONS``), or
  the rates of ``BENCH_OPEN_RATES``.
- A later repetition offers only the knee's neighbourhood of that grid: the rate the first sweep found
  (the highest whose p99 stayed under the limit) and the rates on each side of it. Its result is
  therefore a point of the same grid, and a repetition costs half a sweep.
"""

from __future__ import annotations

from collections.abc import Sequence

P99_LIMIT_FACTOR = 2.0  # the default limit: twice the architecture's own 1-user p99


def sweep_rates(
    fractions: Sequence[float], absolute: Sequence[float], capacity_rps: float | None
) -> list[float]:
    """The first sweep's offered rates, ascending: ``absolute`` when given, else ``fractions`` of the
    capacity (none without a capacity)."""
    if absolute:
        return sorted(float(rate) for rate in absolute)
    if not capacity_rps or capacity_rps <= 0:
        return []
    return sorted(round(fraction * capacity_rps, 1) for fraction in fractions)


def focused_rates(rates: Sequence[float], found: float | None) -> list[float]:
    """The rates a repetition offers: the one the first sweep found and one on each side (the two
    lowest when it found none)."""
    ordered = sorted(rates)
    if not ordered:
        return []
    if found is None or found not in ordered:
        return ordered[:2]
    index = ordered.index(found)
    return ordered[max(index - 1, 0) : index + 2]


def p99_limit_ms(explicit_ms: float | None, one_user_p99_ms: float | None) -> float | None:
    """``BENCH_OPEN_P99_LIMIT_MS``, else twice the architecture's 1-user p99."""
    if explicit_ms is not None:
        return explicit_ms
    return P99_LIMIT_FACTOR * one_user_p99_ms if one_user_p99_ms else None
