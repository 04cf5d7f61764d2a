"""make fuzz's glue (benchmark/fuzz.py): its settings, the schemathesis command, reading its report."""

from __future__ import annotations

import itertools
import json
import tomllib
from pathlib import Path

import pytest
from pydantic import ValidationError

from benchmark.fuzz import HTTP_SERVICES, FuzzSettings, ServiceResult, command, config_file, table


def test_every_http_service_is_fuzzed_by_default() -> None:
    settings = FuzzSettings()
    assert (
        settings.fuzz_services
        == list(HTTP_SERVICES)
        == [
            "model-sync",
            "model-async",
            "scoring-sync",
            "scoring-async",
            "scoring-batched",
            "scoring-queue",
        ]
    )
    assert settings.fuzz_max_examples >= 1000  # "thousands of cases per operation"


def test_services_and_callback_hosts_are_comma_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FUZZ_SERVICES", "scoring-sync, scoring-queue")
    monkeypatch.setenv("FUZZ_CALLBACK_HOSTS", "127.0.0.3")
    settings = FuzzSettings()
    assert settings.fuzz_services == ["scoring-sync", "scoring-queue"]
    assert settings.stack_settings().callback_allowed_hosts == ("127.0.0.3",)
    with pytest.raises(ValidationError, match="queue-worker"):
        FuzzSettings(fuzz_services=["queue-worker"])


def test_the_command_turns_every_check_and_the_hang_timeout_on(tmp_path: Path) -> None:
    argv = command("http://127.0.0.1:1", tmp_path, FuzzSettings(fuzz_request_timeout_s=7, fuzz_seed=3), 50)
    options = dict(itertools.pairwise(argv))
    assert options["run"] == "http://127.0.0.1:1/openapi.json"
    assert options["--checks"] == "all" and options["--max-examples"] == "50"
    assert options["--request-timeout"] == options["--max-response-time"] == "7.0"
    assert options["--phases"] == "examples,coverage,fuzzing,stateful" and options["--seed"] == "3"
    assert set(options["--report"].split(",")) >= {"junit", "pytest"}


def test_the_config_keeps_the_crash_files_and_sizes_the_stateful_phase(tmp_path: Path) -> None:
    config = tomllib.loads(config_file(tmp_path, 30))
    assert config["cache"]["directory"] == (tmp_path / "cache").as_posix()
    assert config["phases"]["stateful"]["generation"]["max-examples"] == 30
    assert "phases" not in tomllib.loads(config_file(tmp_path, None))
    refused = config["checks"]["negative_data_rejection"]["expected-statuses"]
    assert {"400", "413", "422", "431"} <= set(refused) and "200" not in refused


def test_a_failure_or_a_bad_exit_fails_the_service() -> None:
    base = {"service": "s", "seconds": 1.0, "operations": 2, "cases": 10, "errors": [], "folder": "f"}
    assert ServiceResult(exit_code=0, failures=[], **base).passed
    failed = ServiceResult(exit_code=1, failures=[{"title": "Server error", "count": 2}], **base)
    assert not failed.passed and not ServiceResult(exit_code=1, failures=[], **base).passed
    assert "FAIL" in table([failed])[1] and json.dumps(failed.model_dump())
