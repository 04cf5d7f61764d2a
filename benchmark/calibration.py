"""The machine, measured before the run: how fast one core is, how late a sleep wakes up, and whether
anything else was using the machine (``Calibration`` in the run's environment).

- **One core's speed**: :data:`CPU_BENCHMARK` timed with ``timeit`` (the median of
  :data:`CPU_REPEATS` timings of :data:`CPU_NUMBER` loops), in µs per loop. It is the unit CPU cost
  is also given in (:func:`calibrated`: ms of CPU per request ÷ ms per loop = loops per request), so
  runs on machines of different speeds compare.
- **Timer overshoot**: the median lateness of :data:`SLEEPS` sleeps of 45 ms, ``asyncio.sleep`` on
  uvloop (as the async services wait; uvloop's timers tick in whole ms) and ``time.sleep``, in two
  threads at once while the quiet-machine check watches (nothing else of ours runs then, so they
  do not hold each other up). The CPU micro-benchmark runs before, alone: it would hold the GIL.
- **Quiet machine**: over the check, the CPU steal (psutil's ``cpu_times``: steal as a share of all
  the machine's CPU time) and the CPU of every process that is not this one or its children, in %
  of one core (the stack is not running yet). A process that started during the check counts with
  all its CPU; one that ended during it is not seen.

Warnings: other processes above :data:`BUSY_PERCENT` % of a core (the run's numbers would be lower
than the machine can do); steal above :data:`STEAL_PERCENT` % — steal accrues only while a CPU of
this machine wants to run, and during the check it mostly sleeps, so the share seen here understates
what a loaded run loses: 2 % of an idle machine's time means the host is already giving our cores
to other guests, and a loaded run would lose more than the differences the report reads as real.

The rules and arithmetic are plain functions (unit-tested with given numbers); :func:`calibrate`
is the measuring around them.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import timeit
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import psutil
import uvloop

from benchmark.summary import Calibration

CPU_BENCHMARK = "sum(range(10000))"
CPU_NUMBER = 200  # loops per timing (about 20 ms on a 2020s core)
CPU_REPEATS = 9
SLEEP_S = 0.045  # a model call's typical wait
SLEEPS = 50
BUSY_PERCENT = 10.0  # of one core, by processes that are not the run's
STEAL_PERCENT = 2.0  # of the machine's CPU time (why: the module docstring)
DRIFT_PERCENT = 5.0  # change of one core's speed between the start and the end of the measurements
# Linux counts guest time inside user and nice: left out of the total so it is not counted twice.
NOT_IN_TOTAL = frozenset({"guest", "guest_nice"})

ProcessKey = tuple[int, float]  # pid, create time: a recycled pid is another process


@dataclass(frozen=True)
class ProcessCpu:
    name: str
    cpu_s: float  # user + system, since the process started


# --------------------------------------------------------------------------- pure


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def per_loop_us(timings_s: Sequence[float], number: int) -> float | None:
    """µs per loop: the median of ``timings_s``, each of ``number`` loops."""
    middle = median(timings_s)
    return None if middle is None else middle / number * 1e6


def overshoot_ms(requested_s: float, elapsed_s: float) -> float:
    """How much later than asked a sleep woke up, in ms."""
    return (elapsed_s - requested_s) * 1000.0


def steal_percent(before: Mapping[str, float], after: Mapping[str, float]) -> float | None:
    """Steal as a % of all the machine's CPU time between two ``cpu_times()._asdict()``; None where
    the system reports no steal (not Linux) or no time passed."""
    if "steal" not in after:
        return None
    total = sum(after[field] - before[field] for field in after if field not in NOT_IN_TOTAL)
    return None if total <= 0 else 100.0 * (after["steal"] - before["steal"]) / total


def cpu_use(
    before: Mapping[ProcessKey, ProcessCpu],
    after: Mapping[ProcessKey, ProcessCpu],
    started_at: float,
    window_s: float,
) -> dict[ProcessKey, float]:
    """Each process's CPU over the window, % of one core: the difference of its two samples, or all
    of it if it started during the window (one missing from the first sample for another reason is
    left out: its CPU before the window is unknown)."""
    use = {}
    for key, now in after.items():
        if key in before:
            use[key] = 100.0 * (now.cpu_s - before[key].cpu_s) / window_s
        elif key[1] >= started_at:
            use[key] = 100.0 * now.cpu_s / window_s
    return use


def busiest(use: Mapping[ProcessKey, float], names: Mapping[ProcessKey, ProcessCpu]) -> str | None:
    """``"name (pid): N%"`` of the process that used the most CPU; None if none used any."""
    if not use or max(use.values()) <= 0:
        return None
    key = max(use, key=lambda k: use[k])
    return f"{names[key].name} ({key[0]}): {use[key]:.1f}%"


def calibration_warnings(
    other_cpu_percent: float | None, busiest_other: str | None, steal: float | None, check_s: float
) -> list[str]:
    warnings = []
    if other_cpu_percent is not None and other_cpu_percent > BUSY_PERCENT:
        warnings.append(
            f"the machine is busy: processes outside the run used {other_cpu_percent:.0f}% of a core "
            f"over {check_s:.1f} s (busiest: {busiest_other}); the run's numbers may be lower than "
            "this machine can do"
        )
    if steal is not None and steal > STEAL_PERCENT:
        warnings.append(
            f"CPU steal was {steal:.1f}% of the machine's CPU time while it was nearly idle (warning "
            f"above {STEAL_PERCENT:g}%): the hypervisor gives its cores to other guests, and a loaded "
            "run will lose more"
        )
    return warnings


def speed_drift_percent(before: Calibration | None, after: Calibration | None) -> float | None:
    """How much longer (+) or shorter (−) the micro-benchmark took after the measurements, in %."""
    if before is None or after is None or not before.cpu_benchmark_us or after.cpu_benchmark_us is None:
        return None
    return 100.0 * (after.cpu_benchmark_us / before.cpu_benchmark_us - 1.0)


def drift_warning(before: Calibration | None, after: Calibration | None) -> str | None:
    """A warning when one core's speed moved by more than :data:`DRIFT_PERCENT` during the run: then
    the machine, not only the stack, changed between the first and the last measurement, and two runs
    (or two architectures measured at different times) differ by that much for no reason of theirs."""
    drift = speed_drift_percent(before, after)
    if drift is None or abs(drift) <= DRIFT_PERCENT:
        return None
    slower = "slower" if drift > 0 else "faster"
    return (
        f"the machine got {abs(drift):.0f}% {slower} during the run (the CPU micro-benchmark before "
        f"and after the measurements; warning above {DRIFT_PERCENT:g}%): differences of that size between "
        "repetitions, architectures or runs may be the machine's"
    )


def calibrated(cpu_ms: float | None, calibration: Calibration | None) -> float | None:
    """CPU ms (per request) in loops of the calibration's micro-benchmark: comparable across machines."""
    if cpu_ms is None or calibration is None or not calibration.cpu_benchmark_us:
        return None
    return cpu_ms / (calibration.cpu_benchmark_us / 1000.0)


# --------------------------------------------------------------------------- measuring


def cpu_benchmark_us() -> float | None:
    return per_loop_us(timeit.repeat(CPU_BENCHMARK, number=CPU_NUMBER, repeat=CPU_REPEATS), CPU_NUMBER)


def time_sleep_overshoots(n: int = SLEEPS, sleep_s: float = SLEEP_S) -> list[float]:
    overshoots = []
    for _ in range(n):
        started = time.perf_counter()
        time.sleep(sleep_s)
        overshoots.append(overshoot_ms(sleep_s, time.perf_counter() - started))
    return overshoots


def asyncio_sleep_overshoots(n: int = SLEEPS, sleep_s: float = SLEEP_S) -> list[float]:
    """On a uvloop event loop of its own (callable from any thread)."""

    async def measure() -> list[float]:
        overshoots = []
        for _ in range(n):
            started = time.perf_counter()
            await asyncio.sleep(sleep_s)
            overshoots.append(overshoot_ms(sleep_s, time.perf_counter() - started))
        return overshoots

    return uvloop.run(measure())


def ours() -> set[int]:
    """This process and its children."""
    me = psutil.Process()
    try:
        return {me.pid} | {child.pid for child in me.children(recursive=True)}
    except psutil.Error:
        return {me.pid}


def process_cpu(exclude: Iterable[int]) -> dict[ProcessKey, ProcessCpu]:
    """Every other process's CPU so far (the ones psutil may not read are left out)."""
    skip = set(exclude)
    found = {}
    for proc in psutil.process_iter(["name", "cpu_times", "create_time"], ad_value=None):
        info = proc.info
        if proc.pid in skip or info["cpu_times"] is None or info["create_time"] is None:
            continue
        times = info["cpu_times"]
        found[(proc.pid, info["create_time"])] = ProcessCpu(info["name"] or "?", times.user + times.system)
    return found


def watch(
    check_s: float, meanwhile: Sequence[Callable[[], list[float]]]
) -> tuple[Calibration, list[list[float]]]:
    """Watch the machine for ``check_s`` (or as long as ``meanwhile`` runs, in threads); the
    quiet-machine part of the calibration, and what each of ``meanwhile`` returned."""
    started_at = time.time()
    cpu_before = psutil.cpu_times()._asdict()
    procs_before = process_cpu(ours())
    started = time.perf_counter()
    with ThreadPoolExecutor(len(meanwhile)) as pool:
        futures = [pool.submit(task) for task in meanwhile]
        time.sleep(check_s)
        results = [future.result() for future in futures]
    window_s = time.perf_counter() - started
    procs_after = process_cpu(ours())
    steal = steal_percent(cpu_before, psutil.cpu_times()._asdict())
    use = cpu_use(procs_before, procs_after, started_at, window_s)
    quiet = Calibration(
        steal_percent=steal,
        other_cpu_percent=sum(use.values()),
        busiest_other=busiest(use, procs_after),
        check_s=window_s,
    )
    return quiet, results


def calibrate(check_s: float = 3.0) -> Calibration:
    """Measure the machine (about ``check_s`` + 0.3 s; at least the sleeps' 2.3 s)."""
    cpu_us = cpu_benchmark_us()
    quiet, (async_sleeps, sleeps) = watch(check_s, [asyncio_sleep_overshoots, time_sleep_overshoots])
    return quiet.model_copy(
        update={
            "cpu_benchmark_us": cpu_us,
            "cpu_benchmark": f"{CPU_BENCHMARK}: µs per loop, median of {CPU_REPEATS} × {CPU_NUMBER} loops",
            "asyncio_sleep_overshoot_ms": median(async_sleeps),
            "time_sleep_overshoot_ms": median(sleeps),
            "warnings": calibration_warnings(
                quiet.other_cpu_percent, quiet.busiest_other, quiet.steal_percent, quiet.check_s or check_s
            ),
        }
    )
