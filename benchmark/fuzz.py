"""``make fuzz``: schema-driven fuzzing of every HTTP service with schemathesis.

Each service publishes its contract at ``/openapi.json`` (scoring_bench.core.openapi: every status
it can answer, the error body, the queue's links from a submit to its task). This module starts
the stack with the supervisor of ``make up`` and ``make bench`` (on the settings' ports), runs
schemathesis's own command line, ``schemathesis run``, against each service's document, and
stops the stack. Every check schemathesis has is on (no 5xx, status codes, bodies, headers and
content types as documented, bad input refused, valid input accepted, the queue's stateful
sequences), and a request not answered within ``FUZZ_REQUEST_TIMEOUT_S`` fails the run: a hang.

A run writes ``results/fuzz/<run-id>/``: per service the CLI's output, its JUnit and JSON reports,
a pytest file that reproduces each failure, and schemathesis's crash files
(``schemathesis replay results/fuzz/<run-id>/<service>/cache/crashes`` re-sends them to a stack on
the same ports, such as ``make up``'s); and ``fuzz.json``, the numbers of every service.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, Field, ValidationError, field_validator
from pydantic_settings import NoDecode
from rich.console import Console

from feature_store.embedded import RedisBinaryNotFound
from scoring_bench.core.endpoints import OPENAPI_PATH
from scoring_bench.core.settings import Settings
from scoring_bench.stack.servers import SERVICES, service
from scoring_bench.stack.supervisor import StackError, running_stack

HTTP_SERVICES = tuple(s.name for s in SERVICES if s.listens)
PHASES = ("examples", "coverage", "fuzzing", "stateful")
SUMMARY_FILE = "fuzz.json"
HOOKS = Path(__file__).with_name("fuzz_hooks.py")  # schemathesis's SCHEMATHESIS_HOOKS: why, in the file


class FuzzSettings(Settings):
    """One object for the fuzzing process: the stack's settings plus how hard to fuzz it."""

    fuzz_max_examples: int = Field(
        2_000, ge=1, description="Generated cases per operation (schemathesis's --max-examples)."
    )
    fuzz_services: Annotated[list[str], NoDecode] = Field(
        list(HTTP_SERVICES), description="Which services, comma-separated (every HTTP service by default)."
    )
    fuzz_request_timeout_s: float = Field(
        10.0,
        gt=0,
        description="A request not answered within this long is a hang and fails the run "
        "(the longest legitimate answer is a queue wait of QUEUE_MAX_WAIT_MS).",
    )
    fuzz_workers: int = Field(2, ge=1, le=64, description="Operations of one service fuzzed at once.")
    fuzz_parallel: int = Field(
        len(HTTP_SERVICES), ge=1, description="Services fuzzed at once (one schemathesis process each)."
    )
    fuzz_stateful_examples: int | None = Field(
        None, ge=1, description="Scenarios of the queue's stateful phase; unset: as FUZZ_MAX_EXAMPLES."
    )
    fuzz_seed: int | None = Field(None, description="Schemathesis's random seed (unset: a new one per run).")
    fuzz_callback_hosts: Annotated[tuple[str, ...], NoDecode] = Field(
        ("127.0.0.2",),
        description="CALLBACK_ALLOWED_HOSTS of the fuzzed stack: a loopback address nothing listens "
        "on, so the callbacks the fuzzer asks for are refused at once and reach no other process.",
    )
    results_dir: Path = Field(Path("results"), description="Run folders go under <results_dir>/fuzz/.")
    run_id: str = Field("", description="Name of the run folder; empty: the start time.")

    @field_validator("fuzz_services", "fuzz_callback_hosts", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("fuzz_services")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(HTTP_SERVICES))
        if unknown:
            raise ValueError(f"unknown services {unknown}; known: {', '.join(HTTP_SERVICES)}")
        return value

    def stack_settings(self) -> Settings:
        """The stack's own settings, with the fuzzer's callback allowlist."""
        values = {name: getattr(self, name) for name in Settings.model_fields}
        return Settings(**{**values, "callback_allowed_hosts": self.fuzz_callback_hosts})


class ServiceResult(BaseModel):
    """One service's fuzzing, from schemathesis's JSON report."""

    service: str
    exit_code: int
    seconds: float
    operations: int
    cases: int
    failures: list[dict[str, Any]]
    errors: list[dict[str, Any]]
    folder: str

    @property
    def passed(self) -> bool:
        return self.exit_code == 0 and not self.failures and not self.errors


def command(url: str, out: Path, settings: FuzzSettings, max_examples: int) -> list[str]:
    """``schemathesis run`` against one service's document, every check on, the reports in ``out``."""
    timeout = str(settings.fuzz_request_timeout_s)
    argv = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(out / "schemathesis.toml"),
        "--no-color",
        "run",
        url + OPENAPI_PATH,
        "--checks",
        "all",
        "--max-examples",
        str(max_examples),
        "--phases",
        ",".join(PHASES),
        "--workers",
        str(settings.fuzz_workers),
        "--request-timeout",
        timeout,
        "--max-response-time",
        timeout,
        "--report",
        "junit,json,pytest",
        "--report-dir",
        str(out),
        "--wait-for-schema",
        "10",
    ]
    if settings.fuzz_seed is not None:
        argv += ["--seed", str(settings.fuzz_seed)]
    return argv


# What counts as refusing invalid input: schemathesis's list, and the refusals of the servers' guard
# before the app (408: the body stopped coming; 413: too large; 431: a request line and headers
# too large, e.g. a callback_url of 2,000 multi-byte characters, percent-encoded).
REFUSED = [
    "400",
    "401",
    "403",
    "404",
    "405",
    "406",
    "408",
    "409",
    "413",
    "415",
    "422",
    "428",
    "429",
    "431",
    "5xx",
]


def config_file(out: Path, stateful_examples: int | None) -> str:
    """schemathesis.toml of one service: its crash files (the failing cases, replayable) in ``out``,
    what counts as refusing invalid input, and the stateful phase's size when it is not the other
    phases'."""
    text = f'[cache]\ndirectory = "{(out / "cache").as_posix()}"\n'
    text += f"\n[checks.negative_data_rejection]\nexpected-statuses = {json.dumps(REFUSED)}\n"
    if stateful_examples is not None:
        text += f"\n[phases.stateful.generation]\nmax-examples = {stateful_examples}\n"
    return text


def fuzz_service(
    name: str,
    url: str,
    out: Path,
    settings: FuzzSettings,
    max_examples: int,
    echo: Callable[[str], None],
) -> ServiceResult:
    """Run schemathesis against one service; its output goes to ``out/output.txt`` and to ``echo``,
    each line headed by the service's name."""
    out = out.resolve()  # schemathesis runs in it: every path it is given must be absolute
    out.mkdir(parents=True, exist_ok=True)
    (out / "schemathesis.toml").write_text(config_file(out, settings.fuzz_stateful_examples))
    started = time.monotonic()
    with (out / "output.txt").open("w") as log:
        proc = subprocess.Popen(
            command(url, out, settings, max_examples),
            cwd=out,
            env={**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            echo(f"[{name}] {line.rstrip()}")
        exit_code = proc.wait()
    seconds = time.monotonic() - started
    report = _json_report(out)
    return ServiceResult(
        service=name,
        exit_code=exit_code,
        seconds=round(seconds, 1),
        operations=int(report.get("operations", {}).get("tested", 0)),
        cases=int(report.get("test_cases", {}).get("generated", 0)),
        failures=report.get("failures", []),
        errors=report.get("errors", []) or ([] if report else [{"title": "no JSON report", "count": 1}]),
        folder=str(out),
    )


def _json_report(out: Path) -> dict[str, Any]:
    reports = sorted(out.glob("*.json"), key=lambda p: p.stat().st_mtime)
    for path in reversed(reports):
        data = json.loads(path.read_text())
        if isinstance(data, dict) and "test_cases" in data:
            return data
    return {}


def fuzz_stack(
    urls: dict[str, str],
    run_dir: Path,
    settings: FuzzSettings,
    max_examples: int,
    echo: Callable[[str], None] = print,
) -> list[ServiceResult]:
    """Fuzz each service of a running stack (``urls``: service name → base URL), FUZZ_PARALLEL of them
    at once; writes fuzz.json."""
    with ThreadPoolExecutor(max_workers=settings.fuzz_parallel) as pool:
        futures = [
            pool.submit(fuzz_service, name, url, run_dir / name, settings, max_examples, echo)
            for name, url in urls.items()
        ]
        results = [f.result() for f in futures]
    summary = {
        "max_examples": max_examples,
        "seed": settings.fuzz_seed,
        "passed": all(r.passed for r in results),
        "services": [r.model_dump() for r in results],
    }
    (run_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2))
    return results


def new_run_dir(settings: FuzzSettings) -> Path:
    run_dir = settings.results_dir / "fuzz" / (settings.run_id or time.strftime("%Y%m%d-%H%M%S"))
    if run_dir.exists():
        raise FileExistsError(f"{run_dir} exists already: choose another RUN_ID")
    run_dir.mkdir(parents=True)
    return run_dir


def table(results: Iterable[ServiceResult]) -> list[str]:
    lines = [f"{'service':<15}{'result':<8}{'operations':>11}{'cases':>9}{'failures':>10}{'seconds':>9}"]
    for r in results:
        failures = sum(int(f.get("count", 1)) for f in r.failures)
        verdict = "pass" if r.passed else "FAIL"
        lines.append(
            f"{r.service:<15}{verdict:<8}{r.operations:>11}{r.cases:>9}{failures:>10}{r.seconds:>9.1f}"
        )
    return lines


def run(
    settings: FuzzSettings, say: Callable[[str], None] = print, echo: Callable[[str], None] = print
) -> int:
    """``make fuzz``: start the stack, fuzz every service, stop the stack; 0 when nothing failed.
    ``say``: progress; ``echo``: schemathesis's output and the closing table."""
    run_dir = new_run_dir(settings)
    stack = settings.stack_settings()
    say(f"fuzzing {', '.join(settings.fuzz_services)}: {settings.fuzz_max_examples} cases per operation")
    with running_stack(stack, say):
        urls = {name: service(name).url(stack) for name in settings.fuzz_services}
        results = fuzz_stack(urls, run_dir, settings, settings.fuzz_max_examples, echo)
    for line in table(results):
        echo(line)
    echo(f"reports: {run_dir}  (failing cases: <service>/cache/crashes; `schemathesis replay` re-sends them)")
    return 0 if all(r.passed for r in results) else 1


def main() -> int:
    """``python -m benchmark.fuzz`` (``make fuzz``)."""
    console = Console(stderr=True)
    try:
        return run(FuzzSettings(), console.log, lambda line: print(line, flush=True))
    except ValidationError as exc:
        console.print(f"[red]invalid settings:[/red]\n{exc}")
        return 2
    except (StackError, RedisBinaryNotFound, FileExistsError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
