"""The bounded version of ``make fuzz`` (benchmark/fuzz.py): schemathesis against every service of a
real stack, about 100 generated cases per operation plus the queue's stateful sequences; any
failure (a 5xx, an undocumented status, a body or header off the contract, a hang) fails the test
and shows schemathesis's report of it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmark.fuzz import HTTP_SERVICES, SUMMARY_FILE, FuzzSettings, fuzz_stack
from tests.integration.conftest import stack_settings, start_stack

pytestmark = pytest.mark.integration
EXAMPLES = 100
STATEFUL = 30  # the queue's stateful scenarios (submit, then its task by the link)


def test_a_bounded_fuzz_of_every_service_finds_nothing(tmp_path: Path) -> None:
    settings = FuzzSettings(fuzz_seed=12, fuzz_request_timeout_s=10.0, fuzz_stateful_examples=STATEFUL)
    stack = stack_settings(tmp_path / "stack", callback_allowed_hosts=settings.fuzz_callback_hosts)
    with start_stack(stack) as running:
        urls = {name: running.url(name, "") for name in HTTP_SERVICES}
        results = fuzz_stack(urls, tmp_path / "fuzz", settings, EXAMPLES, echo=lambda _: None)
    failed = [r for r in results if not r.passed]
    report = "\n\n".join((Path(r.folder) / "output.txt").read_text()[-6000:] for r in failed)
    assert not failed, report
    assert {r.service for r in results} == set(HTTP_SERVICES)
    assert all(r.operations >= 2 and r.cases >= EXAMPLES for r in results)
    summary = json.loads((tmp_path / "fuzz" / SUMMARY_FILE).read_text())
    assert summary["passed"] and summary["max_examples"] == EXAMPLES
    queue = (tmp_path / "fuzz" / "scoring-queue" / "output.txt").read_text()
    assert "Stateful" in queue and "4 covered" in queue  # every link followed
