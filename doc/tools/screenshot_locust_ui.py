"""Screenshots of `make locust-ui` in a real run: the Statistics tab and the Comparison tab.

    flock -x /tmp/scoring-bench-load.lock .venv/bin/python doc/tools/screenshot_locust_ui.py --doc doc

It starts ``scoring-bench locust-ui`` (the stack and Locust's web UI, exactly as ``make locust-ui`` does,
on the default ports), starts a swarm of the four scoring user classes through the UI's own HTTP API
(``POST /swarm``, what the Start button sends), lets it run ``--seconds`` (20), photographs both tabs
with headless Chromium, saves what the tabs showed (``comparison.json``, ``stats.json``: the numbers
behind the pictures), then stops the load and sends the command one SIGINT, as Ctrl-C would, which
stops Locust and the stack. Everything goes to ``--out`` (``results/locust-ui-<UTC time>/``); ``--doc``
also writes the two PNGs there (``locust-ui-statistics.png``, ``locust-ui-comparison.png``).

Needs Debian's Chromium and its driver (``apt-get install chromium chromium-driver``) and Selenium
(``pip install -e '.[screenshot]'``, not part of ``make install``). It is a load run: hold the load
lock. Chromium renders on the same cores as the stack and Locust, after the load has run its
``--seconds``: the tabs show what Locust counted until then (plus the few seconds of the pictures).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from benchmark.settings import BenchSettings

PROJECT_ROOT = Path(__file__).resolve().parents[2]
UI_URL = f"http://127.0.0.1:{BenchSettings().locust_ui_port}"  # where scoring-bench locust-ui serves it
CLASSES = ("SyncScoringUser", "AsyncScoringUser", "BatchedScoringUser", "QueueScoringUser")
ARCHITECTURES = ("sync", "async", "batched", "queue")
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
VIEWPORT = (1440, 700)  # wide enough for the Comparison tab's columns, tall enough for both tables
MARGIN = 24  # pixels kept below the table
MAX_PNG_BYTES = 300_000
START_TIMEOUT_S = 240.0  # the stack's start-up, then Locust's
STOP_TIMEOUT_S = 30.0


def main() -> int:
    args = _parser().parse_args()
    out: Path = args.out or PROJECT_ROOT / "results" / f"locust-ui-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    out.mkdir(parents=True, exist_ok=True)
    with _locust_ui(out / "locust-ui.log") as http:
        _swarm(http, args.users, args.spawn_rate)
        print(f"swarming {args.users} users of {len(CLASSES)} classes for {args.seconds:g} s", flush=True)
        time.sleep(args.seconds)
        shots = _screenshots(out)
        (out / "comparison.json").write_text(json.dumps(_get(http, "/comparison").json(), indent=1))
        (out / "stats.json").write_text(json.dumps(_get(http, "/stats/requests").json(), indent=1))
        http.post(UI_URL + "/stop", timeout=10)
    for shot in shots:
        _shrink(shot)
        if args.doc:
            target = args.doc / f"locust-ui-{shot.stem}.png"
            target.write_bytes(shot.read_bytes())
            print(f"wrote {target} ({target.stat().st_size:,} bytes)")
    print(f"run folder: {out}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=16, help="users, spread evenly over the classes")
    parser.add_argument("--spawn-rate", type=float, default=4.0)
    parser.add_argument(
        "--seconds", type=float, default=20.0, help="how long the load runs before the pictures"
    )
    parser.add_argument("--out", type=Path, help="run folder (default: results/locust-ui-<UTC time>/)")
    parser.add_argument("--doc", type=Path, help="also write the PNGs here as locust-ui-<tab>.png")
    return parser


@contextmanager
def _locust_ui(log_path: Path) -> Iterator[requests.Session]:
    """``scoring-bench locust-ui`` running, in a process group of its own; one SIGINT at the end (Ctrl-C
    stops Locust and the stack), SIGTERM and then SIGKILL to the group only if that is not enough."""
    http = requests.Session()
    http.trust_env = False
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "benchmark.cli", "locust-ui"],
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_for_ui(http, proc, log_path)
        yield http
    finally:
        http.close()
        _stop(proc)


def _wait_for_ui(http: requests.Session, proc: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"locust-ui ended ({proc.returncode}):\n{log_path.read_text()[-3000:]}")
        try:
            if http.get(UI_URL + "/", timeout=5).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(1.0)
    raise SystemExit(f"Locust's web UI did not answer within {START_TIMEOUT_S:g} s; see {log_path}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    for sig, wait_s in ((signal.SIGINT, STOP_TIMEOUT_S), (signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait_s)
        except subprocess.TimeoutExpired:
            print(f"locust-ui still running {wait_s:g} s after {sig.name}", file=sys.stderr)


def _get(http: requests.Session, path: str) -> requests.Response:
    resp = http.get(UI_URL + path, timeout=10)
    resp.raise_for_status()
    return resp


def _swarm(http: requests.Session, users: int, spawn_rate: float) -> None:
    """What the Start button sends with every class ticked in the class picker. The host stays empty:
    each class keeps its own handler's URL (a host typed in would send every class to it)."""
    form = [("user_count", str(users)), ("spawn_rate", str(spawn_rate)), ("host", "")]
    form += [("shape_class", "Default"), *(("user_classes", name) for name in CLASSES)]
    answer: dict[str, Any] = http.post(UI_URL + "/swarm", data=form, timeout=10).json()
    if not answer.get("success"):
        raise SystemExit(f"Locust refused to swarm: {answer}")


def _screenshots(out: Path) -> list[Path]:
    """The Statistics and the Comparison tab as the page shows them once both tables have their rows."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        width, height = VIEWPORT
        metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
        shots = []
        for tab, name in (("stats", "statistics"), ("comparison", "comparison")):
            driver.get(f"{UI_URL}/?tab={tab}")
            WebDriverWait(driver, 30).until(_rows_of_every_architecture)
            time.sleep(1.0)  # the charts' and tables' last paint
            path = out / f"{name}.png"
            driver.save_screenshot(str(path))
            bottom = driver.execute_script(
                "return document.querySelector('table').getBoundingClientRect().bottom"
            )
            _crop(path, int(bottom) + MARGIN)
            shots.append(path)
        return shots
    finally:
        driver.quit()


def _rows_of_every_architecture(driver: webdriver.Chrome) -> bool:
    """The visible table names every architecture (the Statistics tab by entry, the Comparison tab by row)."""
    words = " ".join(cell.text for cell in driver.find_elements(By.CSS_SELECTOR, "table td")).split()
    return all(arch in words for arch in ARCHITECTURES)


def _crop(path: Path, height: int) -> None:
    """Only the page down to the table (and a margin), not the empty rest of the viewport."""
    with Image.open(path) as image:
        cropped = image.crop((0, 0, image.width, min(height, image.height)))
    cropped.save(path)


def _shrink(path: Path) -> None:
    """A palette PNG (the UI has few colours): a third of the size, the text as sharp."""
    if path.stat().st_size <= MAX_PNG_BYTES // 2:
        return
    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)


if __name__ == "__main__":
    sys.exit(main())
