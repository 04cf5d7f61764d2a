"""Ideal latency of one scoring request: the model calls alone, with zero overhead.

A scoring request makes ``num_models`` model calls, each taking one draw of the configured latency
distribution, capped as :class:`scoring_bench.core.model.LatencySampler` caps it (``min(draw, cap)``).
The sync handler makes the calls one after another, so its ideal latency is the sum of the draws; the async
handler makes them concurrently, so its ideal latency is their maximum. Whatever a measured latency adds
to these is overhead: network, serialisation, queueing, the feature store.

The batching handler (``batched``, doc/batching.md) makes its model calls concurrently too, each a batch
call: one draw plus ``MODEL_BATCH_PER_ITEM_MS`` per item, the cap bounding the whole
(``LatencySampler.draw_batch_ms``). Its ideal is at one user (:func:`batched_ideal_latency_ms`): every batch
holds the request's one item and, never filling, is sent only when it has waited ``BATCH_MAX_WAIT_MS``
(at once when ``BATCH_MAX_SIZE`` is 1). That wait and the one item's cost are the price of batching at
low load, not overhead, so they are in its ideal.

Closed forms are used where they exist (means; quantiles of the maximum; the uniform sum through the
exact Irwin-Hall distribution). Quantiles of a lognormal sum, and of a uniform sum whose cap bites, come
from a deterministic Monte Carlo (fixed seed).
"""

from __future__ import annotations

import math
import operator
import random
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from statistics import NormalDist

from benchmark.stats import quantile_sorted
from scoring_bench.core.settings import Settings

QUANTILES = (0.50, 0.95, 0.99)
MC_SEED = 20_240_601
MC_TABLE_SIZE = 1 << 14  # inverse-CDF table the Monte Carlo draws from (much faster than gauss())
MC_MAX_SAMPLES = 200_000
MC_MIN_SAMPLES = 10_000
MC_DRAW_BUDGET = 1_000_000  # samples × num_models: keeps any fan-out under ~0.2 s
IRWIN_HALL_BITS = 52  # resolution of the exact uniform-sum quantile: 2**-52 of (max - min)
SIMPSON_INTERVALS = 4_000

_STANDARD_NORMAL = NormalDist()


@dataclass(frozen=True)
class IdealLatency:
    """Mean and percentiles of the ideal request latency, and how it was obtained."""

    mean_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    description: str


def ideal_latency_ms(settings: Settings, concurrent: bool, num_models: int | None = None) -> IdealLatency:
    """The ideal latency of a request fanning out to ``num_models`` (default: ``settings.num_models``)
    model calls: their maximum when ``concurrent`` (async handler), else their sum (sync handler)."""
    n = settings.num_models if num_models is None else num_models
    if n < 1:
        raise ValueError(f"num_models must be at least 1, not {n}")
    dist = _distribution(settings)
    note = ""
    if concurrent or n == 1:
        mean = dist.mean_of_max(n)
        quantiles = tuple(dist.quantile(q ** (1 / n)) for q in QUANTILES)
    else:
        mean = n * dist.mean()
        quantiles, note = dist.sum_quantiles(n)
    p50, p95, p99 = quantiles
    return IdealLatency(mean, p50, p95, p99, _describe(dist.label, n, concurrent, mean, note))


def batched_ideal_latency_ms(settings: Settings, num_models: int | None = None) -> IdealLatency:
    """The batching handler's ideal latency at one user: ``BATCH_MAX_WAIT_MS`` of waiting for a batch that
    never fills (none when ``BATCH_MAX_SIZE`` is 1: a batch of one is full), then the maximum of
    ``num_models`` concurrent batch calls of one item, each ``min(draw + MODEL_BATCH_PER_ITEM_MS, cap)``.
    Under load batches fill and the wait shrinks, while each call's per-item cost grows: this is the
    1-user bound only."""
    n = settings.num_models if num_models is None else num_models
    if n < 1:
        raise ValueError(f"num_models must be at least 1, not {n}")
    per_item = settings.model_batch_per_item_ms
    wait = batch_wait_at_one_user_ms(settings)
    dist = _distribution(settings, per_item)
    mean = dist.mean_of_max(n) + wait
    p50, p95, p99 = (dist.quantile(q ** (1 / n)) + wait for q in QUANTILES)
    what = dist.label if n == 1 else f"max of {n} × {dist.label}"
    description = (
        f"E[{what}] + {wait:g} ms = {mean:.1f} ms: at one user each batch holds one item "
        f"(+{per_item:g} ms per item) and waits BATCH_MAX_WAIT_MS = {wait:g} ms for company that never comes"
    )
    return IdealLatency(mean, p50, p95, p99, description)


def batch_wait_at_one_user_ms(settings: Settings) -> float:
    """How long a lone request's batch waits before it is sent: ``BATCH_MAX_WAIT_MS``, unless a batch of
    one is already full (``BATCH_MAX_SIZE`` 1)."""
    return 0.0 if settings.batch_max_size <= 1 else float(settings.batch_max_wait_ms)


def _describe(label: str, n: int, concurrent: bool, mean: float, note: str) -> str:
    """E.g. "E[max of 2 × U(40, 50)] = 46.7 ms"."""
    what = label if n == 1 else f"{'max' if concurrent else 'sum'} of {n} × {label}"
    text = f"E[{what}] = {mean:.1f} ms"
    return f"{text}; {note}" if note else text


def _distribution(settings: Settings, shift_ms: float = 0.0) -> _Distribution:
    """One model call's capped latency; ``shift_ms`` added to each draw before the cap (a batch call's
    per-item cost): ``min(x + d, cap)`` is ``min(x, cap - d) + d``, the same distribution with its cap
    lowered by ``d``, shifted."""
    cap = settings.model_latency_cap_ms
    if shift_ms >= cap:  # the per-item cost alone reaches the cap: every call takes the cap
        return _Fixed(cap)
    if shift_ms > 0:
        lowered = settings.model_copy(update={"model_latency_cap_ms": cap - shift_ms})
        return _Shifted(_distribution(lowered), shift_ms, _distribution(settings).label)
    if settings.model_latency == "fixed":
        return _Fixed(min(settings.model_latency_fixed_ms, cap))
    if settings.model_latency == "uniform":
        return _Uniform(settings.model_latency_min_ms, settings.model_latency_max_ms, cap)
    return _LogNormal(settings.model_latency_median_ms, settings.model_latency_sigma, cap)


class _Distribution(ABC):
    """One capped model-latency draw, in milliseconds."""

    @property
    @abstractmethod
    def label(self) -> str: ...

    @abstractmethod
    def quantile(self, p: float) -> float:
        """Inverse CDF of one draw, for 0 < p < 1."""

    @abstractmethod
    def mean_of_max(self, n: int) -> float:
        """E[max of n independent draws]."""

    def mean(self) -> float:
        return self.mean_of_max(1)

    def sum_quantiles(self, n: int) -> tuple[tuple[float, ...], str]:
        """Quantiles (QUANTILES) of the sum of n draws, and a note on how they were obtained."""
        samples = min(MC_MAX_SAMPLES, max(MC_MIN_SAMPLES, MC_DRAW_BUDGET // n))
        quantiles = _monte_carlo_sum_quantiles(self.quantile, n, samples)
        return quantiles, f"quantiles by Monte Carlo ({samples:,} sums)"


@dataclass(frozen=True)
class _Fixed(_Distribution):
    value: float

    @property
    def label(self) -> str:
        return f"fixed {self.value:g}"

    def quantile(self, p: float) -> float:
        return self.value

    def mean_of_max(self, n: int) -> float:
        return self.value

    def sum_quantiles(self, n: int) -> tuple[tuple[float, ...], str]:
        return (n * self.value,) * len(QUANTILES), ""


@dataclass(frozen=True)
class _Uniform(_Distribution):
    low: float
    high: float
    cap: float

    @property
    def label(self) -> str:
        label = f"U({self.low:g}, {self.high:g})"
        return f"{label} capped at {self.cap:g}" if self.cap < self.high else label

    def quantile(self, p: float) -> float:
        return min(self.low + (self.high - self.low) * p, self.cap)

    def mean_of_max(self, n: int) -> float:
        """E[min(M, cap)] with M the max of n U(a, b): cap - ∫_a^cap ((x - a)/(b - a))^n dx."""
        a, b, c = self.low, self.high, self.cap
        if c <= a or a == b:
            return min(a, c)
        c = min(c, b)
        return c - (b - a) / (n + 1) * ((c - a) / (b - a)) ** (n + 1)

    def sum_quantiles(self, n: int) -> tuple[tuple[float, ...], str]:
        if self.cap < self.high:
            return super().sum_quantiles(n)
        width = self.high - self.low
        return tuple(n * self.low + width * _irwin_hall_quantile(n, q) for q in QUANTILES), ""


@dataclass(frozen=True)
class _LogNormal(_Distribution):
    median: float
    sigma: float
    cap: float

    @property
    def label(self) -> str:
        return f"LogN(median {self.median:g}, σ {self.sigma:g}) capped at {self.cap:g}"

    def quantile(self, p: float) -> float:
        return min(self.median * math.exp(self.sigma * _STANDARD_NORMAL.inv_cdf(p)), self.cap)

    def mean(self) -> float:
        """E[min(X, c)] = e^(μ + σ²/2) Φ((ln c - μ - σ²)/σ) + c (1 - Φ((ln c - μ)/σ)), μ = ln(median)."""
        z_cap = math.log(self.cap / self.median) / self.sigma
        uncapped = self.median * math.exp(self.sigma**2 / 2) * _phi_cdf(z_cap - self.sigma)
        return uncapped + self.cap * (1 - _phi_cdf(z_cap))

    def mean_of_max(self, n: int) -> float:
        """E[min(M, cap)] with M = median · e^(σZ), Z the max of n standard normals (CDF Φ^n).

        Below the cap, integrate median · e^(σz) · n Φ(z)^(n-1) φ(z) numerically (Simpson); the
        integrand is negligible outside [-12, σ + 12] for any n the settings allow. Above it, the
        max contributes cap · P(M > cap) = cap · (1 - Φ(z_cap)^n) exactly.
        """
        z_cap = math.log(self.cap / self.median) / self.sigma
        low, high = -12.0, min(z_cap, self.sigma + 12.0)

        def density_weighted(z: float) -> float:
            return self.median * math.exp(self.sigma * z) * n * _phi_cdf(z) ** (n - 1) * _phi_pdf(z)

        below_cap = _simpson(density_weighted, low, high) if high > low else 0.0
        return below_cap + self.cap * (1 - _phi_cdf(z_cap) ** n)


@dataclass(frozen=True)
class _Shifted(_Distribution):
    """``inner`` + ``shift`` (``inner`` capped ``shift`` lower, so the whole keeps the cap); ``base``: the
    unshifted distribution's label."""

    inner: _Distribution
    shift: float
    base: str

    @property
    def label(self) -> str:
        return f"({self.base} + {self.shift:g})"

    def quantile(self, p: float) -> float:
        return self.inner.quantile(p) + self.shift

    def mean_of_max(self, n: int) -> float:
        return self.inner.mean_of_max(n) + self.shift

    def mean(self) -> float:
        return self.inner.mean() + self.shift


def _irwin_hall_quantile(n: int, q: float) -> float:
    """Exact q-quantile of the sum of n independent U(0, 1) (Irwin-Hall), by bisection on its CDF.

    CDF(y) = (1/n!) Σ_{k=0}^{⌊y⌋} (-1)^k C(n, k) (y - k)^n. Its terms cancel catastrophically in floats
    from n ≈ 20 on, so y is held as m / 2**bits and the CDF compared in exact integer arithmetic.
    """
    scale = 1 << IRWIN_HALL_BITS
    target = Fraction(q) * math.factorial(n) * scale**n
    low, high = 0, n * scale  # CDF(low / scale) < q <= CDF(high / scale)
    while high - low > 1:
        mid = (low + high) // 2
        if _irwin_hall_scaled_cdf(n, mid, scale) < target:
            low = mid
        else:
            high = mid
    return high / scale


def _irwin_hall_scaled_cdf(n: int, m: int, scale: int) -> int:
    """n! · scale^n · CDF(m / scale) of the Irwin-Hall distribution, exactly."""
    return sum((-1) ** k * math.comb(n, k) * (m - k * scale) ** n for k in range(min(m // scale, n) + 1))


def _monte_carlo_sum_quantiles(quantile: Callable[[float], float], n: int, samples: int) -> tuple[float, ...]:
    """Quantiles of the sum of n draws, from ``samples`` sums of seeded draws.

    Draws pick uniformly from the quantile function tabulated at MC_TABLE_SIZE mid-points (inverse
    transform sampling on a fine grid); the grid's error is far below the sampling error.
    """
    table = [quantile((i + 0.5) / MC_TABLE_SIZE) for i in range(MC_TABLE_SIZE)]
    draws = random.Random(MC_SEED).choices(table, k=samples * n)
    sums = draws[0::n]
    for j in range(1, n):
        sums = list(map(operator.add, sums, draws[j::n]))
    sums.sort()
    return tuple(quantile_sorted(sums, 100 * q) for q in QUANTILES)


def _simpson(f: Callable[[float], float], low: float, high: float) -> float:
    h = (high - low) / SIMPSON_INTERVALS
    odd = math.fsum(f(low + i * h) for i in range(1, SIMPSON_INTERVALS, 2))
    even = math.fsum(f(low + i * h) for i in range(2, SIMPSON_INTERVALS, 2))
    return (f(low) + f(high) + 4 * odd + 2 * even) * h / 3


def _phi_cdf(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2))


def _phi_pdf(z: float) -> float:
    return math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
