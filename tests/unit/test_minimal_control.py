"""The minimal async control in the server registry: started only when asked, served like the async
handler (same loop, parser, workers) but without the slow-client guard."""

from __future__ import annotations

from scoring_bench.core.settings import Settings
from scoring_bench.stack.servers import (
    CONTROL,
    GUARDED_UVICORN_PROTOCOLS,
    SERVICES,
    command,
    service,
    stack_services,
)
from scoring_bench.stack.supervisor import planned_ports


def test_the_control_runs_only_when_asked() -> None:
    assert Settings().minimal_control is False
    assert CONTROL not in SERVICES  # `up`, fuzz, monitoring: the product's services only

    assert stack_services(Settings()) == SERVICES
    assert stack_services(Settings(minimal_control=True)) == (*SERVICES, CONTROL)
    assert service("scoring-minimal") is CONTROL
    assert "scoring-minimal" not in planned_ports(Settings())
    assert planned_ports(Settings(minimal_control=True))["scoring-minimal"] == (8004, "SCORING_MINIMAL_PORT")


def test_the_control_is_served_as_the_async_handler_without_the_guard() -> None:
    s = Settings(minimal_control=True, scoring_async_workers=2, scoring_minimal_port=9123)
    control, product = command(CONTROL, s), command(service("scoring-async"), s)
    assert "api_scoring_minimal.app:from_environment" in control
    assert control[control.index("--port") + 1] == "9123"
    for option in ("--workers", "--loop"):
        assert control[control.index(option) + 1] == product[product.index(option) + 1]
    assert product[product.index("--http") + 1] == GUARDED_UVICORN_PROTOCOLS["httptools"]
    assert control[control.index("--http") + 1] == "httptools"
    assert CONTROL.predict_url(s) == "http://127.0.0.1:9123/api/v1/ml/async/predict"
