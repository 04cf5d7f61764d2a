"""The sections of a report about every architecture: latency at one user, throughput and the breaking
point, sustained load, stress and recovery, where the time goes, timeit, saturation, and the machine."""

from __future__ import annotations

from collections.abc import Callable

from benchmark.analysis.phases import RECOVERY_LATENCY_FACTOR, RECOVERY_MAX_FAILURE_RATIO
from benchmark.report.blocks import Block, Bullets, Paragraph
from benchmark.report.format import DASH, ms, number, positive, rps, share, times
from benchmark.summary import ArchitectureSummary, Comparison, Environment, Recovery

Archs = dict[str, ArchitectureSummary]
Value = Callable[[ArchitectureSummary], float | None]


def pairs(archs: Archs) -> list[tuple[str, str]]:
    """(baseline, other) pairs: every architecture against sync (or the first one)."""
    if len(archs) < 2:
        return []
    base = "sync" if "sync" in archs else next(iter(archs))
    return [(base, other) for other in archs if other != base]


def _compare(
    label_a: str, a: float | None, label_b: str, b: float | None, lower_is_better: bool
) -> str | None:
    """E.g. "async: 2.0× lower than sync"; None when either number is missing or not positive."""
    a_value, b_value = positive(a), positive(b)
    if a_value is None or b_value is None:
        return None
    if lower_is_better:
        word = "lower" if b_value < a_value else "higher"
    else:
        word = "higher" if b_value > a_value else "lower"
    ratio = max(a_value, b_value) / min(a_value, b_value)
    return f"{label_b}'s is {times(ratio)} {word} than {label_a}'s"


def _versus(archs: Archs, value: Value, lead: str) -> list[str]:
    """One sentence per pair of architectures comparing ``value`` (lower is better)."""
    sentences = []
    for base, other in pairs(archs):
        versus = _compare(base, value(archs[base]), other, value(archs[other]), lower_is_better=True)
        if versus:
            sentences.append(f"{lead}: {versus}.")
    return sentences


def latency_sentences(archs: Archs) -> list[str]:
    sentences = []
    for arch, data in archs.items():
        one_user, ideal = data.one_user, data.ideal
        if one_user is None or one_user.p50_ms is None:
            sentences.append(f"{arch}: no 1-user measurement in this run.")
            continue
        text = (
            f"{arch}: at one user the median latency was {ms(one_user.p50_ms)} "
            f"(p95 {ms(one_user.p95_ms)}, p99 {ms(one_user.p99_ms)}, {one_user.requests:,} requests)"
        )
        if ideal and one_user.overhead_p50_ms is not None:
            text += (
                f", {number(one_user.overhead_p50_ms, '.1f', 'ms')} above its ideal p50 of "
                f"{ms(ideal.p50_ms)} ({ideal.description}): that is what the stack itself adds"
            )
        sentences.append(text + ".")
    return sentences + _versus(
        archs, lambda a: a.one_user.p50_ms if a.one_user else None, "Median latency at one user"
    )


def throughput_sentences(archs: Archs) -> list[str]:
    sentences = []
    for arch, data in archs.items():
        ramp = data.ramp
        if ramp is None:
            sentences.append(f"{arch}: the ramp did not run (or left no files): breaking point unknown.")
            continue
        point = ramp.breaking_point
        top_users = ramp.steps[-1].users if ramp.steps else None
        if point is None or point.users is None:
            reason = point.reason if point else ""
            text = f"{arch} did not break in the ramp up to {top_users} users ({reason})"
        else:
            text = f"{arch} broke at {point.users} users ({rps(point.rps)}): {point.reason}"
        if ramp.last_good:
            text += f". Its last good step: {ramp.last_good.users} users at {rps(ramp.last_good.rps)}"
        if ramp.peak:
            text += f". Its highest throughput in the ramp: {rps(ramp.peak.rps)} at {ramp.peak.users} users"
        elif point is not None and point.users is not None:
            text += ". It broke at the first step: there is no good step"
        sentences.append(text + ".")
    for base, other in pairs(archs):
        base_rps, other_rps = positive(_peak_rps(archs[base])), positive(_peak_rps(archs[other]))
        if base_rps and other_rps:
            sentences.append(
                f"At their highest, {other} served {times(other_rps / base_rps)} the {base} "
                f"throughput ({rps(other_rps)} against {rps(base_rps)})."
            )
    return sentences


def _peak_rps(data: ArchitectureSummary) -> float | None:
    return data.ramp.peak.rps if data.ramp and data.ramp.peak else None


def sustained_sentences(archs: Archs) -> list[str]:
    sentences = []
    for arch, data in archs.items():
        sustained = data.sustained
        if sustained is None:
            sentences.append(f"{arch}: the sustained phase did not run.")
            continue
        text = (
            f"{arch} held {rps(sustained.rps)} at {sustained.users} users for "
            f"{number(sustained.duration_s, '.0f', 's')} (p50 {ms(sustained.p50_ms)}, "
            f"p95 {ms(sustained.p95_ms)}, {share(sustained.failure_ratio)} failed)"
        )
        cpu = sustained.server_cpu_ms_per_request
        if cpu is not None:
            text += f"; its services used {number(cpu, '.2f', 'ms')} of CPU per request"
        sentences.append(text + ".")
    return sentences + _versus(archs, _cpu_per_request, "Server CPU per request")


def _cpu_per_request(data: ArchitectureSummary) -> float | None:
    return data.sustained.server_cpu_ms_per_request if data.sustained else None


def stress_sentences(archs: Archs) -> list[str]:
    sentences = []
    for arch, data in archs.items():
        stress = data.stress
        if stress is None:
            sentences.append(f"{arch}: the stress phase did not run.")
            continue
        text = (
            f"Under stress at {stress.users} users {arch} served {rps(stress.rps)} with p95 "
            f"{ms(stress.p95_ms)} and {share(stress.failure_ratio)} failures"
        )
        sentences.append(text + _recovery_clause(stress.recovery) + ".")
    return sentences


def _recovery_clause(recovery: Recovery | None) -> str:
    if recovery is None:
        return "; the recovery step did not run"
    verdict = recovery.recovered
    detail = (
        f"p50 {ms(recovery.p50_ms)} (limit {RECOVERY_LATENCY_FACTOR:g} × {ms(recovery.reference_p50_ms)}), "
        f"{share(recovery.failure_ratio)} failed (limit {RECOVERY_MAX_FAILURE_RATIO:.0%})"
    )
    state = "recovered" if verdict else "did not recover" if verdict is False else "recovery is undecided"
    return f"; back at {recovery.users} users it {state}: {detail}"


def split_sentences(archs: Archs) -> list[str]:
    sentences = []
    for arch, data in archs.items():
        split = data.time_split
        if split:
            total = split.feature_store_ms + split.models_ms + split.other_ms
            concurrent = split.concurrent if split.concurrent is not None else arch in ("async", "batched")
            combined = "concurrently: their maximum counts" if concurrent else "one after another"
            wait = split.batch_wait_ms
            if wait is not None:  # batched: the slowest model's wait, then its batch call
                total += wait
                combined = "batch calls, the slowest model's"
            model_share = f", {split.models_ms / total:.0%} of it" if total > 0 else ""
            waited = (
                f"; before its batch was sent the request waited {ms(wait)} (sequential requests: a batch "
                "never fills and goes when BATCH_MAX_WAIT_MS is up)"
                if wait is not None
                else ""
            )
            sentences.append(
                f"{arch}: of a mean {ms(total)} on the server, the model calls ({combined}) took "
                f"{ms(split.models_ms)}{model_share}{waited}; the feature store took "
                f"{ms(split.feature_store_ms)} and everything else (framework, HTTP, JSON, aggregation) "
                f"{ms(split.other_ms)}."
            )
        if arch == "queue" and split:
            sentences.append(
                "queue: these are the worker's steps (from the task's timings), the time a task runs; "
                + (
                    f"before it ran, a task spent {ms(split.queued_ms)} from its submit to its start (the "
                    f"API, the publish, the broker, the worker's pick-up), and after it, "
                    f"{ms(split.returned_ms)} until the client had its result (the result store, the API's "
                    "wake-up, the answer)."
                    if split.queued_ms is not None and split.returned_ms is not None
                    else "queueing and the way back to the client come on top of them."
                )
            )
        if data.profile:
            whose = (
                "the API's wall time (a submit that waits for its task: the wait is the queue's)"
                if arch == "queue"
                else "the handler's wall time"
            )
            sentences.append(f"{arch}, profiled: {profile_shares(data.profile)} of {whose}.")
        if data.worker_profile:
            sentences.append(
                f"{arch} worker, profiled: {profile_shares(data.worker_profile)} of its tasks' wall time "
                "(Celery's work around a task — result writes, signals — is the queue's)."
            )
    return sentences or ["No Server-Timing or profile data in this run."]


def profile_shares(shares: dict[str, float]) -> str:
    """The parts of a profile breakdown ("model calls 78%, ..."), the queue's only where it has a share."""
    return ", ".join(
        f"{name.replace('_', ' ')} {value:.0%}" for name, value in shares.items() if name != "queue" or value
    )


def timeit_sentence(archs: Archs, comparison: Comparison) -> str:
    means = ", ".join(
        f"{arch} {ms(data.timeit.mean_ms)} mean over {data.timeit.n:,} requests"
        for arch, data in archs.items()
        if data.timeit is not None
    )
    improvement = comparison.timeit_improvement_pct
    if not means:
        return "The timeit experiment did not run."
    if improvement is None or improvement.percent is None:
        return f"Sequential requests: {means}."
    percent = improvement.percent
    word = "faster" if percent >= 0 else "slower"
    return (
        f"Sequential requests: {means}. On average async was {abs(percent):.1f}% {word} than sync "
        f"({number(improvement.confidence, '.0%')} bootstrap interval: {number(improvement.low)}% to "
        f"{number(improvement.high)}% faster)."
    )


def saturation_blocks(archs: Archs, cores: int | None) -> list[Block]:
    flags = [
        f"{arch}, {flag}" for arch, data in archs.items() if data.saturation for flag in data.saturation.flags
    ]
    peaks = [
        f"{arch}: load generator peaked at {number(sat.load_generator_max_cpu_percent, '.0f')}% "
        f"of one core, machine at {number(sat.machine_max_cpu_percent, '.0f')}%, processes outside the run "
        f"at {number(sat.others_cpu_percent, '.0f')}% on average"
        for arch, data in archs.items()
        if (sat := data.saturation) is not None
    ]
    if not peaks:
        return [Paragraph("No resource samples in this run: saturation is unknown.")]
    scale = f" (CPU in % of one core; the machine has {cores} cores)" if cores else " (CPU in % of one core)"
    blocks: list[Block] = [Paragraph("Peaks" + scale + ": " + "; ".join(peaks) + ".")]
    if flags:
        warning = "⚠ The measurement may be limited by the client or the machine:"
        blocks += [Paragraph(warning), Bullets(flags)]
    else:
        blocks.append(
            Paragraph(
                "No saturation flags: neither the load generator nor the machine ran hot, and no other "
                "process took a noticeable share of the CPU."
            )
        )
    return blocks


def machine_lines(environment: Environment | None) -> list[str]:
    if environment is None:
        return ["environment.json is missing: the machine is unknown."]
    machine = environment.machine
    settings = environment.settings or {}
    lines = [
        f"CPU: {_or_dash(machine.cpu_model if machine else None)}, "
        f"{_or_dash(machine.cores if machine else None)} cores",
        f"memory: {number(machine.memory_gb if machine else None, '.1f', 'GB')}",
        f"OS: {_or_dash(machine.os if machine else None)}, "
        f"kernel {_or_dash(machine.kernel if machine else None)}",
        f"Python {_or_dash(environment.python)}, git commit {str(environment.git_commit or DASH)[:12]}",
    ]
    if settings:
        # the scoring handlers' servers (a run folder older than the setting: gunicorn and uvicorn)
        sync_server = settings.get("scoring_sync_server") or "gunicorn"
        sync_worker = "granian" if sync_server == "granian" else settings.get("scoring_sync_worker_class")
        async_server = settings.get("scoring_async_server") or "uvicorn"
        lines.append(
            f"stack: {settings.get('num_models')} model calls per request, "
            f"model kind {settings.get('model_kind')}, latency {settings.get('model_latency')}; "
            f"sync {sync_worker} "
            f"{settings.get('scoring_sync_workers')} × {settings.get('scoring_sync_threads')} threads, "
            f"async {settings.get('scoring_async_workers')} {async_server} worker(s) "
            f"on {settings.get('async_loop')}"
            + (  # a run folder older than the batching handler has no batch settings
                f"; batched {settings.get('scoring_batched_workers')} uvicorn worker(s), batches of at most "
                f"{settings.get('batch_max_size')} sent within {settings.get('batch_max_wait_ms')} ms, "
                f"{settings.get('model_batch_per_item_ms')} ms per item"
                if settings.get("batch_max_size") is not None
                else ""
            )
        )
    packages = environment.packages or {}
    if packages:
        lines.append("packages: " + ", ".join(f"{name} {packages[name]}" for name in sorted(packages)))
    return lines


def _or_dash(value: object) -> str:
    return DASH if value is None else str(value)
