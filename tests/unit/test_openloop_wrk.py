"""The wrk cross-check's pure parts (benchmark/openloop/wrk.py): its command, its script, its output."""

from __future__ import annotations

import pytest

from benchmark.openloop.wrk import parse_wrk, wrk_command, wrk_script

OUTPUT = """\
Running 10s test @ http://127.0.0.1:8001/api/v1/ml/async/predict
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    48.31ms    2.10ms  60.12ms   90.00%
    Req/Sec     1.32k    50.00     1.40k    70.00%
  Latency Distribution
     50%   47.95ms
     75%   49.10ms
     90%   50.20ms
     99%   55.00ms
  13245 requests in 10.01s, 2.50MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 5
Requests/sec:   1323.45
Transfer/sec:    255.33KB
"""


def test_wrk_output_gives_requests_per_second_p50_and_errors() -> None:
    result = parse_wrk(OUTPUT)
    assert result is not None
    assert result.rps == 1323.45 and result.p50_ms == 47.95
    assert result.requests == 13245 and result.errors == 8


@pytest.mark.parametrize(("cell", "ms"), [("812.00us", 0.812), ("1.20s", 1200.0), ("47.95ms", 47.95)])
def test_wrk_latency_units(cell: str, ms: float) -> None:
    result = parse_wrk(OUTPUT.replace("47.95ms", cell))
    assert result is not None and result.p50_ms == pytest.approx(ms)


def test_output_without_a_rate_is_no_result() -> None:
    assert parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n") is None


def test_the_script_posts_the_json_body() -> None:
    script = wrk_script(b'{"entity_id": "0", "features": [5.1]}')
    assert 'wrk.method = "POST"' in script
    assert 'wrk.body = [[{"entity_id": "0", "features": [5.1]}]]' in script
    assert 'wrk.headers["Content-Type"] = "application/json"' in script


def test_the_command_is_one_thread_n_connections_whole_seconds() -> None:
    assert wrk_command("wrk", "http://u", 64, 9.6, "s.lua") == [
        "wrk",
        "--latency",
        "-t1",
        "-c64",
        "-d10s",
        "-s",
        "s.lua",
        "http://u",
    ]
    assert "-d1s" in wrk_command("wrk", "http://u", 1, 0.2, "s.lua")
